"""Demo data: a catalogue of agents, tools, people and conversations, and the generator that
writes sessions from it (`manage.py seed_demo` is its command)."""

from sessions_app.demo.generator import DemoData, DemoSeedTaken, Totals

__all__ = ["DemoData", "DemoSeedTaken", "Totals"]
