"""The configuration file: users, profiles, calendars, rules and where things run.

Modules: ``load.py`` (``load_config``: read and check the file, every problem at once),
``schema.py`` (the pydantic model of each block), ``calendars.py`` (each calendar
kind's connector, and checking connection blocks and calendar entries with it),
``checks.py`` (URLs, the store, placing a problem at its line and column),
``rule_file.py`` (reading the rule file) and ``app.py`` (``AppConfig``, the loaded
configuration, which builds the users' calendar sources). See README.md and docs/.
"""

from sync.config.app import AppConfig, UnbuiltSource
from sync.config.load import load_config
from sync.config.rule_file import load_rules
from sync.config.schema import PushConfig

__all__ = ["AppConfig", "PushConfig", "UnbuiltSource", "load_config", "load_rules"]
