"""From a query plan to text-index expressions, and back to relevance tiers.

``TextMatch`` builds the expressions an engine sends for each tier (phrase at
the start, phrase anywhere, finished last word, every word, with typos), in
the syntax of its text index: FTS5 on SQLite, tsquery on PostgreSQL. The two
say the same things (AND, OR, NOT, a phrase, a prefix, the start of the
title), so both backends match exactly the same titles. It also ranks a
title already known to match into the same tiers from its words
(``assess``, with the tiers and title tests of ``assessment.py``), so a small
match set needs one index read instead of one per tier, and the same function
explains a hit's rank and finds its highlights.
"""

from __future__ import annotations

from collections.abc import Sequence

from reelsearch.search.assessment import (
    ADJACENT,
    ALL_WORDS,
    AT_START,
    EXACT,
    WHOLE_LAST_WORD,
    WITH_TYPOS,
    Assessment,
    SlotTest,
    matched_words_of,
    order_score,
)
from reelsearch.search.normalize import word_key
from reelsearch.search.plan import Alternative, QueryPlan, Slot
from reelsearch.search.snapshot import CatalogSnapshot
from reelsearch.search.syntax import MatchSyntax

# A last word this long that exists in the catalog is taken as finished.
FINISHED_WORD_LENGTH = 5

# The kinds of preferred tiers (``TextMatch.preferred_kinds``): the words typed side by
# side at the start of the title, anywhere, every word whole anywhere, every word
# stop words included (``TextMatch.strict``).
TIER_PHRASE_AT_START, TIER_PHRASE, TIER_WHOLE_WORDS, TIER_STRICT = 1, 2, 3, 4


class TextMatch:
    """Expressions for the as-typed tiers and, computed only if needed, the typo tier."""

    __slots__ = (
        "_ranking",
        "_syntax",
        "_slot_terms",
        "_with_typos",
        "contradicts_itself",
        "excluded",
        "highlight_prefix",
        "planned_words",
        "plan",
        "phrase",
        "plain",
        "preferred",
        "preferred_kinds",
        "strict",
        "typos",
        "vocabulary",
        "word_key",
        "words",
    )

    def __init__(self, snapshot: CatalogSnapshot, plan: QueryPlan, syntax: MatchSyntax) -> None:
        self._syntax = syntax
        quote, any_of = syntax.quote, syntax.any_of
        vocabulary = snapshot.vocabulary
        self.plan = plan
        self.typos = snapshot.typos
        self.vocabulary = vocabulary
        words = plan.typed_words
        self.words = words
        self.word_key = word_key(" ".join(words))
        # In parentheses: tsquery's "!" binds tighter than its phrase operator.
        self.excluded = (
            "(" + syntax.or_.join(self._phrases(Alternative(p))[0] for p in plan.excluded) + ")"
            if plan.excluded
            else ""
        )
        # Each required slot as the OR of every phrase that counts as typing it.
        self._slot_terms = {
            id(slot): any_of([p for alt in slot.alternatives for p in self._phrases(alt)])
            for slot in plan.required
        }
        self.plain = self._but_not(syntax.and_.join(self._slot_terms.values()))
        # Every slot required, stop words too: whether titles hold all the
        # words typed (None when every slot is required anyway).
        optional = [
            any_of([p for alt in slot.alternatives for p in self._phrases(alt)])
            for slot in plan.slots
            if slot.optional and not slot.is_year
        ]
        self.strict = (
            self._but_not(syntax.and_.join([*self._slot_terms.values(), *optional]))
            if optional
            else None
        )
        # Phrase tiers use the words as typed, stop words included: "the mat"
        # prefers "The Matrix" at the start of a title to "Matrix, The".
        last_prefix = plan.last_is_prefix
        options = [[quote(word)] for word in words]
        if last_prefix and words:
            options[-1] = self._prefix_options(words[-1])
        # After other words, a long last word that is already a whole word of
        # some title is likely finished: it matches as that word before its
        # completions ("almost angel" -> Almost an Angel before Almost Angels).
        # Short ones are likely mid-word ("the mat" -> The Matrix).
        if (
            last_prefix
            and len(words) > 1
            and len(words[-1]) >= FINISHED_WORD_LENGTH
            and words[-1] in vocabulary
        ):
            whole = [*options[:-1], [quote(words[-1])]]
        else:
            whole = options
        preferred: list[str] = []
        # Each preferred tier's kind, for ``RankSets.tier_rows`` to find its titles in
        # memory; the phrase tiers' words as one alternative (the last one a prefix
        # unless taken as finished).
        kinds: list[int] = []
        self.phrase = Alternative(words, prefix=last_prefix and whole is options)
        if len(words) > 1:
            # Words side by side in the order typed, at the start of the title,
            # then anywhere: "night p" -> Night People before Fright Night Part II.
            # A phrase can't hold an OR, so one phrase per completion.
            then = syntax.then
            head = then.join(tokens[0] for tokens in whole[:-1])
            phrases = [f"{head}{then}{last}" for last in whole[-1]]
            preferred.append(self._but_not(any_of([f"{syntax.start}{p}" for p in phrases])))
            preferred.append(self._but_not(any_of(phrases)))
            kinds += [TIER_PHRASE_AT_START, TIER_PHRASE]
        if whole is not options and len(plan.required) == len(plan.slots):
            preferred.append(self._but_not(syntax.and_.join(any_of(t) for t in whole)))
            kinds.append(TIER_WHOLE_WORDS)
        if self.strict is not None:
            # Titles holding the stop words too, in any form the plan allows,
            # before those without, as ``Assessment.sort_key`` ranks a small
            # set ("la story": L.A. Story before Toy Story).
            preferred.append(self.strict)
            kinds.append(TIER_STRICT)
        self.preferred = tuple(preferred)
        self.preferred_kinds = tuple(kinds)
        self._with_typos: str | None | bool = False  # False: not computed yet
        self._ranking = tuple(SlotTest(slot) for slot in plan.slots)
        # What every search of this plan asks of it, read once per plan (the
        # plan's properties compute them anew on each read).
        self.contradicts_itself = plan.contradicts_itself
        # The unfinished last word, highlighted only as far as typed.
        self.highlight_prefix = words[-1] if last_prefix and words else None
        # How many of the query's words the plan searches for (SearchResult.all_words).
        self.planned_words = sum(len(slot.words) for slot in plan.slots)

    # -- expressions -----------------------------------------------------------

    def _but_not(self, expression: str) -> str:
        if not self.excluded:
            return expression
        return f"({expression}){self._syntax.but_not}{self.excluded}"

    def _phrases(self, alternative: Alternative) -> list[str]:
        """An alternative as index phrases: one, or one per completion of its last word."""
        syntax = self._syntax
        tokens = alternative.tokens
        head = [syntax.quote(t) for t in tokens[:-1]]
        lasts = (
            self._prefix_options(tokens[-1]) if alternative.prefix else [syntax.quote(tokens[-1])]
        )
        if not head:
            return lasts
        if not alternative.adjacent:  # anywhere in the title: one AND group
            return ["(" + syntax.and_.join([*head, syntax.any_of(lasts)]) + ")"]
        return [syntax.then.join([*head, last]) for last in lasts]

    def _prefix_options(self, word: str) -> list[str]:
        quote = self._syntax.quote
        completions = self.vocabulary.completions(word)
        if completions is None:  # short: the index's own prefix lookup is fast
            return [quote(word) + self._syntax.prefix]
        return [quote(c) for c in completions] or [quote(word)]  # none: matches nothing

    @property
    def with_typos(self) -> str | None:
        """Every required slot as typed or within the typos of its word, or None
        when no such word has a candidate."""
        if self._with_typos is False:
            syntax = self._syntax
            groups: list[str] = []
            found = False
            for slot in self.plan.required:
                candidates = self._typo_candidates(slot)
                found = found or bool(candidates)
                options = [self._slot_terms[id(slot)], *map(syntax.quote, candidates)]
                groups.append(syntax.or_.join(options))
            self._with_typos = (
                self._but_not(syntax.and_.join(f"({g})" for g in groups)) if found else None
            )
        return self._with_typos  # type: ignore[return-value]

    def slot_group(self, slot: Slot, *, typos: bool) -> str:
        """One required slot's part of ``plain`` (or, with ``typos``, of ``with_typos``):
        every title the whole expression matches, this part matches too."""
        term = self._slot_terms[id(slot)]
        if not typos:
            return term
        return (
            "("
            + self._syntax.or_.join([term, *map(self._syntax.quote, self._typo_candidates(slot))])
            + ")"
        )

    def _typo_candidates(self, slot: Slot) -> tuple[str, ...]:
        return self.typos.candidates(slot.words[0]) if slot.typos else ()

    # -- ranking a title known to match --------------------------------------------

    def assess(
        self, titles: Sequence[str], *, typo_match: bool = False, detail: bool = False
    ) -> Assessment:
        """The best of a movie's titles (normalized, primary first) for this query.

        Word order, which ranks exact titles, is found for the others too
        with ``detail`` (explain)."""
        best = self._assess_title(titles[0], 0, typo_match, detail)
        if len(titles) == 1:
            return best
        best_key = best.sort_key
        for index in range(1, len(titles)):
            title = titles[index]
            title_words = title.split()
            if not self._may_match(set(title_words), typo_match):
                continue
            found = self._assess_title(title, index, typo_match, detail)
            key = found.sort_key
            if key < best_key:
                best, best_key = found, key
        return best

    def _may_match(self, present: set[str], typo_match: bool) -> bool:
        """Cheap test that an alternate title holds something of every required slot."""
        return all(
            any(alt.tokens[0] in present or alt.prefix for alt in slot.alternatives)
            or (typo_match and slot.typos)
            for slot in self.plan.required
        )

    def _assess_title(self, title: str, index: int, typo_match: bool, detail: bool) -> Assessment:
        title_words = title.split()
        present = set(title_words)
        effective: list[str] = []
        absent = missing = typos = planned_fixes = respaced = units = 0
        last_prefix = False
        spaced = " " + title
        for test in self._ranking:
            alternative = test.present(title_words, present, spaced)
            if alternative is None:
                corrected = self._corrected(test.slot, present) if typo_match else None
                if corrected is not None:
                    typos += 1
                    effective.append(corrected)
                    last_prefix = False
                    continue
                if test.optional:
                    missing += test.counts_missing
                    continue
                absent += 1
                alternative = test.typed
            else:
                units += 1
                planned_fixes += alternative.corrected
            effective += alternative.tokens
            last_prefix = alternative.prefix
            respaced += alternative.respaced
        if typos or (typo_match and not units):
            tier = WITH_TYPOS
        else:
            tier = self._tier(title_words, effective, last_prefix, units)
        return Assessment(
            tier,
            absent,
            missing,
            order_score(title_words, effective) if detail or tier == EXACT else 0,
            typos + planned_fixes,
            index,
            respaced,
            max(len(title_words) - len(effective), 0),
        )

    def matched_words(self, title: str, *, typo_match: bool = False) -> frozenset[str]:
        """The words of a normalized title that match the query (for highlights):
        each slot's longest alternative present, or its typo correction."""
        title_words = title.split()
        present = set(title_words)
        matched: set[str] = set()
        spaced = " " + title
        for test in self._ranking:
            alternative = test.present(title_words, present, spaced)
            if alternative is not None:
                tokens = alternative.tokens
                if len(tokens) == 1 and not alternative.prefix:  # found in ``present``
                    matched.add(tokens[0])
                else:
                    matched.update(matched_words_of(alternative, title_words, present))
            elif typo_match:
                corrected = self._corrected(test.slot, present)
                if corrected is not None:
                    matched.add(corrected)
        return frozenset(matched)

    def _corrected(self, slot: Slot, present: set[str]) -> str | None:
        for candidate in self._typo_candidates(slot):
            if candidate in present:
                return candidate
        return None

    def _tier(self, title_words: list[str], words: list[str], last_prefix: bool, units: int) -> int:
        """The tier of a title holding ``words`` (typed as ``units`` slots), mirroring
        the SQL tiers. Words side by side count only across slots: a split word's
        halves are side by side by definition ("strangelove" in The Strange Love
        of Martha Ivers is not a phrase match, so Dr. Strangelove goes first)."""
        if not words:
            return ALL_WORDS
        if title_words == words or (
            len(title_words) == len(words) and sorted(title_words) == sorted(words)
        ):
            return EXACT
        n = len(words)
        last = words[-1]
        finished = not last_prefix or (
            n > 1 and len(last) >= FINISHED_WORD_LENGTH and last in self.vocabulary
        )

        if n > 1 and units > 1:
            head = words[:-1]
            for start in range(len(title_words) - n + 1):
                if title_words[start : start + n - 1] != head:
                    continue
                # The last word fits: as itself, or completed while typed. Inline, not
                # a closure: one made per title ranked cost more than the test.
                candidate = title_words[start + n - 1]
                if candidate == last if finished else candidate.startswith(last):
                    return AT_START if start == 0 else ADJACENT
        if finished and last_prefix and last in title_words:
            return WHOLE_LAST_WORD
        return ALL_WORDS

    def order_score(self, title_words: Sequence[str]) -> int:
        return order_score(list(title_words), list(self.words))
