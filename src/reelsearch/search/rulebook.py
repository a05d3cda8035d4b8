"""Synonyms and stop words: relevance rules read from files and reloaded while serving.

The files (``search/rules/synonyms.txt`` and ``stopwords.txt`` unless the
settings name others) are parsed once into lookups keyed by normalized
words. The engine's catalog poller calls ``RuleFiles.reload_if_changed()``
every poll interval, which re-reads them when their modification time or
size changed, so an operator edits a file and every worker picks it up
within a second, without a restart; requests only read ``current()``.
A file that fails to parse keeps the previous rules (and logs why).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from reelsearch.errors import ConfigError
from reelsearch.search.normalize import normalize

log = logging.getLogger(__name__)

BUNDLED = Path(__file__).parent / "rules"
# A synonym longer than this many words is refused: matching tries every span.
MAX_SYNONYM_WORDS = 6

Phrase = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rules:
    """What the query planner asks: is this a stop word, what else may these words be."""

    # words typed -> other phrases that count as typing them
    synonyms: dict[Phrase, tuple[Phrase, ...]] = field(default_factory=dict)
    stop_words: frozenset[str] = frozenset()
    longest_synonym: int = 0

    def alternatives(self, words: Phrase) -> tuple[Phrase, ...]:
        return self.synonyms.get(words, ())


def parse_synonyms(text: str, source: str = "synonyms") -> dict[Phrase, tuple[Phrase, ...]]:
    """``a => b, c`` (one-way) and ``a, b, c`` (multi-way) lines into a lookup."""
    found: dict[Phrase, list[Phrase]] = {}

    def phrases(part: str, line_no: int) -> list[Phrase]:
        out = []
        for raw in part.split(","):
            words = tuple(normalize(raw).split())
            if not words:
                raise ConfigError(f"{source} line {line_no}: an empty synonym")
            if len(words) > MAX_SYNONYM_WORDS:
                raise ConfigError(
                    f"{source} line {line_no}: {raw.strip()!r} has more than "
                    f"{MAX_SYNONYM_WORDS} words"
                )
            out.append(words)
        return out

    for line_no, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=>" in line:
            left, _, right = line.partition("=>")
            if "=>" in right:
                raise ConfigError(f"{source} line {line_no}: more than one '=>'")
            targets = phrases(right, line_no)
            for key in phrases(left, line_no):
                found.setdefault(key, []).extend(t for t in targets if t != key)
        else:
            group = phrases(line, line_no)
            if len(group) < 2:
                raise ConfigError(
                    f"{source} line {line_no}: a synonym list needs two or more entries "
                    "separated by commas (or 'a => b' for one-way)"
                )
            for key in group:
                found.setdefault(key, []).extend(other for other in group if other != key)
    return {key: tuple(dict.fromkeys(values)) for key, values in found.items() if values}


def parse_stop_words(text: str) -> frozenset[str]:
    words: set[str] = set()
    for line in text.splitlines():
        words.update(normalize(line.split("#", 1)[0]).split())
    return frozenset(words)


def build_rules(synonyms_text: str, stop_words_text: str, source: str = "synonyms") -> Rules:
    synonyms = parse_synonyms(synonyms_text, source)
    return Rules(
        synonyms=synonyms,
        stop_words=parse_stop_words(stop_words_text),
        longest_synonym=max((len(key) for key in synonyms), default=0),
    )


class RuleFiles:
    """The current ``Rules`` from two files, re-read when either changes on disk."""

    def __init__(self, synonyms_path: str, stop_words_path: str, poll_seconds: float) -> None:
        self.paths = (
            Path(synonyms_path) if synonyms_path else BUNDLED / "synonyms.txt",
            Path(stop_words_path) if stop_words_path else BUNDLED / "stopwords.txt",
        )
        self.poll_seconds = poll_seconds
        self._signature = self._stat()
        # The rules and the digest of the bytes they were built from, replaced
        # together in one assignment. A broken file at start is a startup error.
        self._loaded = self._read()

    def current(self) -> Rules:
        """The rules as last read: no file system call on the request path."""
        return self._loaded[0]

    @property
    def version(self) -> str:
        """A digest of the files the current rules were read from: the result cache keys
        answers with it, so a key changes exactly when the rules a search uses do."""
        return self._loaded[1]

    def reload_if_changed(self) -> bool:
        signature = self._stat()
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            self._loaded = self._read()
        except (OSError, ConfigError) as exc:
            log.error("relevance rules not reloaded, keeping the previous ones: %s", exc)
            return False
        log.info("relevance rules reloaded from %s", ", ".join(map(str, self.paths)))
        return True

    def _stat(self) -> tuple[tuple[int, int], ...]:
        out = []
        for path in self.paths:
            try:
                info = os.stat(path)
                out.append((info.st_mtime_ns, info.st_size))
            except OSError:
                out.append((-1, -1))
        return tuple(out)

    def _read(self) -> tuple[Rules, str]:
        synonyms_path, stop_words_path = self.paths
        try:
            raw_synonyms = synonyms_path.read_bytes()
            raw_stop_words = stop_words_path.read_bytes()
            synonyms = raw_synonyms.decode("utf-8")
            stop_words = raw_stop_words.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read relevance rules: {exc}") from None
        digest = hashlib.blake2b(raw_synonyms + b"\0" + raw_stop_words + b"\0", digest_size=8)
        return build_rules(synonyms, stop_words, source=str(synonyms_path)), digest.hexdigest()
