"""The write-invalidation rule on its own: which tags a movie change reaches (decision 0015)."""

from __future__ import annotations

from reelsearch.cache.invalidation import ChangeMatcher, MovieChange
from reelsearch.cache.tags import search_tags
from reelsearch.search.query import parse_search
from reelsearch.search.rulebook import build_rules

RULES = build_rules("lotr => lord of the rings\n", "the\nof\na\n")


def added(title: str, movie_id: int = 99, counts: dict[str, int] | None = None) -> ChangeMatcher:
    """The matcher of one new movie titled ``title`` (words as normalized)."""
    change = MovieChange(2, movie_id, frozenset(), frozenset(title.split()))
    return ChangeMatcher([change], None if counts is None else lambda w: counts.get(w, 0))


def tags(q: str, hits: tuple[int, ...] = (), *, all_words: bool | None = True) -> tuple[str, ...]:
    query = parse_search([("q", q)] if q else [])
    return search_tags(query, [{"id": i} for i in hits], 1, RULES, all_words=all_words)


def reached(matcher: ChangeMatcher, q: str, **kwargs: object) -> bool:
    return matcher.affects(tags(q, **kwargs))  # type: ignore[arg-type]


def test_the_same_word_or_a_typed_prefix_of_one_is_reached() -> None:
    """A finished word reaches a title holding it; a last word still typed (no space
    after) reaches a title with a word it begins; other words do not."""
    matcher = added("heat wave")
    assert reached(matcher, "heat ")
    assert reached(matcher, "wav")
    assert not reached(matcher, "wav ")
    assert not reached(matcher, "cold ")


def test_words_within_the_engines_typo_rule_are_reached() -> None:
    """One typo from 5 letters, two from 9 (typos.py), none in short words or with digits."""
    matcher = added("casablanca matrix")
    assert reached(matcher, "casablacna ")  # transposition: one typo
    assert reached(matcher, "casblanka ")  # two typos in a 10-letter word
    assert reached(matcher, "matrx ")
    assert not reached(matcher, "mtrx ")  # two typos in a 6-letter word
    assert not reached(added("alien"), "alie2 ")  # a digit: never a typo


def test_splits_joins_and_elision_are_reached() -> None:
    """A query word a title writes as two ("spiderman"), two words a title writes as one,
    and an elided article ("lavventura" for "avventura") all reach."""
    assert reached(added("spider man"), "spiderman ")
    assert reached(added("spiderman"), "spider man ")
    assert reached(added("lavventura"), "avventura ")
    # "man" ends "batman": reached while "man" may be new to the vocabulary (a new split
    # "bat man"), not once it is known to be in many titles.
    assert reached(added("spider man"), "batman ")
    assert not reached(added("spider man", counts={"spider": 5, "man": 5}), "batman ")


def test_a_split_piece_reaches_only_if_it_may_enter_or_leave_the_vocabulary() -> None:
    """With word counts known, a piece held by other titles too cannot make a new split:
    "dead" already counted in 5 titles does not reach "braindead"; a new word does."""
    common = {"dead": 5, "brain": 5}
    assert not reached(added("dead calm", counts=common), "braindead ")
    assert reached(added("brain", counts={}), "braindead ")  # "brain" is new


def test_initialisms_and_synonyms_are_reached() -> None:
    """A title of one-letter words reaches the word they spell ("swat" for S.W.A.T.); a
    title holding a synonym's words reaches the searches the rules expand to them."""
    assert reached(added("s w a t"), "swat ")
    assert not reached(added("s w", counts={"s": 5, "w": 5}), "swat ")
    assert reached(added("rings"), "lotr ")


def test_stop_words_before_a_required_word_only_count_when_the_engine_cut_the_query() -> None:
    """ "the matrix" searched whole is not reached by a new "The Room"; when the engine
    dropped trailing words that matched nothing ("the xyzzy" searched as "the"), it is."""
    room = added("the room")
    assert not reached(room, "the matrix", all_words=True)
    assert reached(room, "the xyzzy", all_words=False)
    assert reached(room, "the xyzzy", all_words=None)  # unknown: cut assumed
    assert reached(room, "the ")  # stop words only: required


def test_movies_on_the_page_and_filter_only_searches_are_reached() -> None:
    """A changed movie reaches every answer showing it, whatever the words; any change
    reaches every answer with no words (filters only)."""
    renamed = added("something else", movie_id=7)
    assert reached(renamed, "matrix ", hits=(3, 7))
    assert not reached(renamed, "matrix ", hits=(3, 8))
    assert reached(renamed, "")


def test_unknown_rules_make_an_answer_reached_by_any_write() -> None:
    """Without the engine's rules (synonyms unknown), an answer is tagged as reached by
    every write: never kept on a guess."""
    query = parse_search([("q", "matrix")])
    assert added("unrelated").affects(search_tags(query, [], 1, None))
