"""Logdeck's benchmark: console, API and admin against a stock ModelAdmin and the raw-SQL floor."""
