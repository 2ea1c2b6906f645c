"""Logdeck settings: one module, driven by the environment.

Nothing to set for a laptop (SQLite in the project folder, DEBUG on with `make run`);
`DATABASE_URL`, `SECRET_KEY`, `ALLOWED_HOSTS` and `REDIS_URL` for a real deployment.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    """A boolean from the environment; anything but a clear yes or no is an error."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off."
    )


def env_int(name: str, default: int) -> int:
    """An integer from the environment; a malformed value is an error, not a silent default."""
    return _env_number(name, default, int, "an integer")


def env_float(name: str, default: float) -> float:
    """A number from the environment; a malformed value is an error, not a silent default."""
    return _env_number(name, default, float, "a number")


def _env_number[T: (int, float)](name: str, default: T, kind: type[T], what: str) -> T:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not {what}.") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string, "
            "or DEBUG=1 for development."
        )
    SECRET_KEY = "logdeck-development-only-not-a-secret"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
if not ALLOWED_HOSTS and not DEBUG:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is not set. Set ALLOWED_HOSTS to a comma-separated list of host names."
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "ninja",
    "axes",
    "agents",
    "sessions_app",
    "memories",
]

MIDDLEWARE = [
    # /healthz and /readyz answer first: probes come by IP address, over plain HTTP, every second.
    "config.health.HealthMiddleware",
    # /metrics, with its token, before the host check too; off unless METRICS_TOKEN is set.
    "config.metrics.MetricsMiddleware",
    # One structured line per request (with its id, returned in X-Request-ID) and its metrics.
    "config.request_log.RequestLogMiddleware",
    # A view that finds the database away answers 503 with Retry-After, not 500.
    "config.unavailable.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.replicas.ReadYourWritesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "config.api.ApiErrorShapeMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the page that says how long.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "libraries": {"console": "config.console_tags"},
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# No DATABASE_URL: a SQLite file beside the code (or at SQLITE_PATH). SQLite, by either way, runs
# in WAL mode so the console reads while an agent writes, with a busy timeout and IMMEDIATE
# transactions so concurrent writers queue, not fail.


def sqlite_database(name: str) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        "OPTIONS": {
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
            ),
            "transaction_mode": "IMMEDIATE",
            "timeout": env_int("SQLITE_BUSY_TIMEOUT", 20),
        },
    }


DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    try:
        _db = dj_database_url.parse(DATABASE_URL)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
    if _db["ENGINE"] not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
        raise ImproperlyConfigured(
            "DATABASE_URL must be a postgres:// or sqlite:/// URL "
            "(leave it unset for SQLite in logdeck.sqlite3)."
        )
    if not _db.get("NAME"):
        raise ImproperlyConfigured(
            "DATABASE_URL names no database: use postgres://user@host:5432/<database> "
            "or sqlite:///<relative path> (sqlite:////<absolute path>)."
        )
if DATABASE_URL and _db["ENGINE"] == "django.db.backends.postgresql":
    # A PostgreSQL that does not answer is a 503 within seconds, not a worker held for long.
    _db.setdefault("OPTIONS", {})["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 2)
    # Values bound server-side: bytes and long texts go as they are, not spelled out in the SQL
    # and parsed again. psycopg prepares no statement on its own (a prepared statement's generic
    # plan cannot use a partial index whose condition became a parameter), only those Logdeck
    # asks it to (config.database.prepared_cursor: the API key's look-up).
    _binding = (
        {"server_side_binding": True, "prepare_threshold": 2**31 - 1}
        if env_bool("DATABASE_SERVER_SIDE_BINDING", True)
        else {}
    )
    _db["OPTIONS"].update(_binding)
    if env_bool("DATABASE_POOL", True):
        from config.database import pool_check

        # psycopg's pool; Django requires persistent connections to be off with it.
        _db["CONN_MAX_AGE"] = 0
        _db["OPTIONS"]["pool"] = {
            "min_size": env_int("DATABASE_POOL_MIN", 1),
            "max_size": env_int("DATABASE_POOL_MAX", 20),
            "timeout": env_int("DATABASE_POOL_TIMEOUT", 2),
            # A connection is tried before it is handed out: one that died idle (a restart, a
            # killed backend) is replaced instead of failing the request that got it.
            "check": pool_check,
            # While PostgreSQL is away the pool retries with a doubling delay; giving that up
            # after a few seconds lets the next request start afresh, so the site is back within
            # seconds of the database, however long it was gone.
            "reconnect_timeout": env_int("DATABASE_POOL_RECONNECT_TIMEOUT", 5),
        }
    else:
        _db["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60)
        _db["CONN_HEALTH_CHECKS"] = True
    _db["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME") or None}
    DATABASES = {"default": _db}
    # Streaming replicas for reads (config/replicas.py): persistent connections that give up
    # within REPLICA_CONNECT_TIMEOUT seconds, so an unreachable one costs a request little.
    for _n, _url in enumerate(env_list("DATABASE_REPLICA_URLS"), start=1):
        try:
            _replica = dj_database_url.parse(_url)
        except ValueError as exc:
            raise ImproperlyConfigured(f"DATABASE_REPLICA_URLS is malformed: {exc}") from None
        if _replica["ENGINE"] != "django.db.backends.postgresql":
            raise ImproperlyConfigured("DATABASE_REPLICA_URLS must hold postgres:// URLs.")
        _replica["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60)
        _replica["CONN_HEALTH_CHECKS"] = True
        _replica["OPTIONS"] = {
            "connect_timeout": env_int("REPLICA_CONNECT_TIMEOUT", 2),
            **_binding,
        }
        _replica["TEST"] = {"MIRROR": "default"}
        DATABASES[f"replica{_n}"] = _replica
    if len(DATABASES) > 1:
        DATABASE_ROUTERS = ["config.replicas.ReplicaRouter"]
elif DATABASE_URL:
    DATABASES = {"default": sqlite_database(_db["NAME"])}
else:
    DATABASES = {
        "default": sqlite_database(env_str("SQLITE_PATH", str(BASE_DIR / "logdeck.sqlite3")))
    }

# After a client writes, its reads go to the primary for this long; a replica further behind
# than REPLICA_MAX_LAG_SECONDS is skipped (its lag read at most every REPLICA_CHECK_SECONDS).
READ_YOUR_WRITES_SECONDS = env_int("READ_YOUR_WRITES_SECONDS", 5)
REPLICA_MAX_LAG_SECONDS = env_float("REPLICA_MAX_LAG_SECONDS", 2.0)
REPLICA_CHECK_SECONDS = env_float("REPLICA_CHECK_SECONDS", 1.0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "agents.User"

# --- Cache ----------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            # Redis, or this process's memory while Redis is unreachable (config/cache.py).
            "BACKEND": "config.cache.FallbackRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_PREFIX", "logdeck"),
            "OPTIONS": {
                "socket_connect_timeout": env_int("REDIS_TIMEOUT", 1),
                "socket_timeout": env_int("REDIS_TIMEOUT", 1),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
AGENT_CONFIG_CACHE_SECONDS = env_int("AGENT_CONFIG_CACHE_SECONDS", 300)

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Logins are throttled by django-axes, counting failures in the database, so every worker
# process sees them, with Redis or without: LOGIN_FAILURE_LIMIT failures for one account, or from
# one address, lock it out for LOGIN_COOLOFF_MINUTES (each attempt while locked starts the wait
# again). A superuser unlocks from the admin ("Access attempts") or `manage.py axes_reset_username`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"  # the login forms' field, which holds the email
AXES_USERNAME_CALLABLE = "agents.login.login_username"
AXES_CLIENT_IP_CALLABLE = "agents.login.login_address"
AXES_LOCKOUT_CALLABLE = "agents.login.login_locked_out"
AXES_VERBOSE = False

# Email goes out only when EMAIL_HOST is set (with EMAIL_PORT, EMAIL_HOST_USER,
# EMAIL_HOST_PASSWORD, EMAIL_USE_TLS, DEFAULT_FROM_EMAIL as needed); password reset by email is
# on only then, and otherwise says who can help instead.
_email_host = env_str("EMAIL_HOST")
# Without a host there is no mailer, on purpose: nothing is sent, and password reset says it
# is off, so Django's warning that no default mailer is set is silenced.
MAILERS = {}
SILENCED_SYSTEM_CHECKS = [] if _email_host else ["mail.W001"]
if _email_host:
    MAILERS["default"] = {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": _email_host,
            "port": env_int("EMAIL_PORT", 587),
            "username": env_str("EMAIL_HOST_USER"),
            "password": env_str("EMAIL_HOST_PASSWORD"),
            "use_tls": env_bool("EMAIL_USE_TLS", True),
            "timeout": env_int("EMAIL_TIMEOUT", 10),
        },
    }
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "logdeck@localhost")
PASSWORD_RESET_ENABLED = bool(_email_host)

# Addresses in these domains are operators' alone: the API never makes an end user of one, and
# answers such an upsert as it answers an operator's own address, so neither is revealed.
OPERATOR_EMAIL_DOMAINS = {domain.lower() for domain in env_list("OPERATOR_EMAIL_DOMAINS")}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security -------------------------------------------------------------------------------
from django.utils.csp import CSP  # noqa: E402

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- API ------------------------------------------------------------------------------------
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 50)
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", 500)
API_MAX_BATCH = env_int("API_MAX_BATCH", 1000)
# The largest serialized checkpoint state or pending write a thread stores (bytes, decoded).
CHECKPOINT_MAX_BYTES = env_int("CHECKPOINT_MAX_BYTES", 5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)
# Failed API key attempts allowed per client address and window before 429, counted in the
# database (a valid key is never refused). X-Forwarded-For is believed only from these proxies.
API_AUTH_FAILURE_LIMIT = env_int("API_AUTH_FAILURE_LIMIT", 10)
API_AUTH_FAILURE_WINDOW = env_int("API_AUTH_FAILURE_WINDOW", 60)
API_TRUSTED_PROXIES = env_list("API_TRUSTED_PROXIES")


# --- Logs and metrics -----------------------------------------------------------------------
def _log_level(name: str, default: str) -> str:
    # In any case, as gunicorn takes LOG_LEVEL too (`make serve`).
    level = (env_str(name, "").strip() or default).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ImproperlyConfigured(
            f"{name}={level.lower()!r} is not a log level: use debug, info, warning, error or "
            "critical."
        )
    return level


# Every line carries the request id; LOG_FORMAT=json makes each one a JSON object. One line per
# request at INFO (logger "logdeck.request", REQUEST_LOG_LEVEL=WARNING keeps only the 5xx).
LOG_FORMAT = env_str("LOG_FORMAT", "text").strip().lower()
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} is not a log format: use text or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.request_log.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "config.request_log.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": _log_level("LOG_LEVEL", "WARNING")},
    "loggers": {"logdeck.request": {"level": _log_level("REQUEST_LOG_LEVEL", "INFO")}},
}
# Prometheus metrics at /metrics, only with `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_TOKEN = env_str("METRICS_TOKEN")

# --- Backups --------------------------------------------------------------------------------
# `dumpdata` and `loaddata` use Logdeck's JSON Lines (config/backup.py), JSON (a plain `dumpdata`)
# and XML: exact microseconds, one natural-key lookup per related object, not per row, and a
# restore that finds the rows `migrate` made by natural key.
SERIALIZATION_MODULES = {
    "jsonl": "config.backup",
    "json": "config.backup_json",
    "xml": "config.backup_xml",
}
