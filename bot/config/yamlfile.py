"""Read a YAML file strictly: syntax errors with file:line:column, and duplicate keys reported
(PyYAML would silently keep the last one, so a second `site-a:` would drop the first's devices)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml

from bot.core.errors import ConfigError


def read_yaml(path: Path) -> tuple[object, list[str]]:
    """The parsed document and a problem line per duplicate key; ConfigError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError([f"{path}: cannot read ({reason})"]) from None
    return _parse_yaml(text, str(path))


def _parse_yaml(text: str, where: str) -> tuple[object, list[str]]:
    """The parsed document and any duplicate keys (PyYAML would silently keep the last one)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        return loader.construct_document(node), list(_duplicate_keys(node, where, set()))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        place = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        raise ConfigError([f"{place}: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{where}: {exc}"]) from None
    finally:
        loader.dispose()


def _duplicate_keys(node: yaml.Node, where: str, visited: set[int]) -> Iterator[str]:
    if id(node) in visited:  # aliases can make the node graph cyclic
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                mark = key.start_mark
                if key.value in first:
                    yield (f'{where}:{mark.line + 1}:{mark.column + 1}: duplicate key "{key.value}"'
                           f" (first on line {first[key.value]})")
                first.setdefault(key.value, mark.line + 1)
            yield from _duplicate_keys(value, where, visited)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(item, where, visited)
