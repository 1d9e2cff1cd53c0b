"""Reading a rule file from disk; ``rules.rulefile.parse_rules`` validates and compiles its text.

``load_rules`` is how ``load_config`` reads the file named by ``rules:`` and how
``calref rules check`` reads the file it is given.
"""

from __future__ import annotations

from pathlib import Path

from rules.errors import Problem, RuleFileError, ValidationError
from rules.rulefile import RuleSet, parse_rules
from rules.yamlfile import decode_text


def load_rules(path: str | Path) -> RuleSet:
    """Read and compile the rule file at ``path``; ``RuleFileError`` lists every problem,
    named by the path (a file that cannot be read, or is not UTF-8, is one too)."""
    path = Path(path)
    try:
        text = decode_text(path.read_bytes(), str(path))
    except OSError as err:
        raise RuleFileError(
            [Problem(str(path), None, None, f"cannot read: {err.strerror}")]
        ) from None
    except ValidationError as err:  # not UTF-8: placed at the first bad byte
        raise RuleFileError(err.problems) from None
    return parse_rules(text, str(path))
