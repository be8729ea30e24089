"""Sample derivations from a seed and build the corpus (train/valid/test, disjoint).

The sampler chooses *derivations* (``spec.Sentence``); ``realize.py`` turns each one into an
English and a German sentence. Constraints here keep the English unambiguous — every English
sentence the sampler can produce has exactly one German rendering:

- time adverbials only in main clauses, and sentence-final only when no clause follows the one
  they belong to (else "… who reads the book today" could attach to either clause);
- nothing follows an object that carries a relative clause, in English (German extraposes it);
- relative clauses attach to a subject in the prefield or to a direct object.

All randomness comes from one ``random.Random(seed)``; look-up tables are lists in table order,
so the same seed gives a byte-identical corpus on any machine and Python ≥ 3.10.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator
from functools import lru_cache

from apps.translation.grammar.lexicon import Lexicon, Verb, default_lexicon
from apps.translation.grammar.realize import Realizer
from apps.translation.grammar.spec import NP, PP, AttrPP, Clause, Sample, Sentence
from apps.translation.grammar.words_other import (
    COORDINATORS,
    DIRECTIONAL_PREPS,
    LOCATIVE_PREPS,
    PRONOUNS,
    SUBORDINATORS,
)

MIN_WORDS, MAX_WORDS = 4, 20  # English words per sentence (punctuation not counted)

_DETS_SG = (("the", 45), ("a", 25), ("this", 6), ("every", 3), ("my", 5), ("his", 4),
            ("her", 4), ("our", 4), ("their", 4))
_DETS_MASS = (("the", 35), ("", 40), ("this", 5), ("my", 5), ("his", 5), ("her", 5), ("our", 5))
_DETS_PL = (("the", 40), ("", 25), ("these", 8), ("some", 5), ("many", 5), ("two", 2),
            ("three", 2), ("four", 2), ("five", 2), ("my", 3), ("his", 2), ("her", 2),
            ("our", 2), ("their", 4))
# Determiners whose German negation is plain: "nicht" after the phrase, or "kein" for a / bare.
_NEG_SAFE = frozenset(["the", "a", "", "this", "these", "my", "his", "her", "our", "their"])
_DEFINITE_ONLY = frozenset(["the", "this", "these", "my", "his", "her", "our", "their"])
_FRAMES = (("intr", 16), ("motion", 12), ("tr", 32), ("dat", 8), ("ditr", 9), ("prep", 9),
           ("cop", 12))


@lru_cache(maxsize=256)
def _cumulative(weighted: tuple[tuple[str, int], ...]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    items, bounds, total = [], [], 0
    for item, w in weighted:
        total += w
        items.append(item)
        bounds.append(total)
    return tuple(items), tuple(bounds)


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    """Weighted choice on integer weights (explicit, so the draw sequence is ours to fix)."""
    items, bounds = _cumulative(weighted)
    return items[bisect.bisect_right(bounds, rng.randrange(bounds[-1]))]


class Generator:
    """Samples :class:`Sentence` derivations over a lexicon."""

    def __init__(
        self, lexicon: Lexicon, *, determiners: tuple[str, ...] | None = None, pronoun_rate: float = 0.15
    ) -> None:
        """``determiners`` / ``pronoun_rate`` shrink the space (tests use a tiny grammar to force
        many different derivations onto the same English string and check they agree)."""
        self.lex = lex = lexicon
        self.determiners = None if determiners is None else frozenset(determiners)
        self.pronoun_rate = pronoun_rate
        self.realizer = Realizer(lexicon)
        nouns = list(lex.nouns.values())
        self.by_frame: dict[str, list[Verb]] = {}
        for v in lex.verbs.values():  # only frames whose argument slots can all be filled
            needs_obj = v.frame in ("tr", "dat", "prep", "ditr")
            if v.subj and (v.obj or not needs_obj) and (v.iobj or v.frame != "ditr"):
                self.by_frame.setdefault(v.frame, []).append(v)
        self.subj_set = {v.key: frozenset(v.subj) for v in lex.verbs.values()}
        self.obj_set = {v.key: frozenset(v.obj) for v in lex.verbs.values()}
        self.person_subject = {v.key: any(lex.nouns[k].person for k in v.subj) for v in lex.verbs.values()}
        adjs = list(lex.adjectives.values())

        def fitting(n, kind: str) -> list[str]:
            return [a.key for a in adjs if a.kind == kind and any(c in a.classes for c in n.classes)]

        self.quality = {n.key: fitting(n, "Q") for n in nouns}  # size, age, mood ... first
        self.colour = {n.key: fitting(n, "C") for n in nouns}  # then colour
        self.person_adjs = [a.key for a in adjs if a.kind == "Q" and "P" in a.classes]
        self.loc = {k: [n.key for n in nouns if k in n.loc] for k in LOCATIVE_PREPS}
        self.dir = {k: [n.key for n in nouns if k in n.dir] for k in DIRECTIONAL_PREPS}
        self.persons = [n.key for n in nouns if n.person]
        self.things = [n.key for n in nouns if "T" in n.classes and "R" not in n.classes]
        self.places = [n.key for n in nouns if "B" in n.classes]
        self.animals = [n.key for n in nouns if "A" in n.classes]
        advs = list(lex.adverbs.values())
        self.freq = [a.key for a in advs if a.kind == "freq"]
        self.manner = [a.key for a in advs if a.kind == "manner"]
        self.time = {t: [a.key for a in advs if a.kind == "time" and a.tense in ("any", t)]
                     for t in ("present", "past")}

    # --- noun phrases -----------------------------------------------------------------------
    def np(self, rng: random.Random, keys, *, pron: bool = False, dets=None, attr: bool = True) -> NP:
        if pron and rng.random() < self.pronoun_rate:
            return NP(rng.choice(tuple(PRONOUNS)), det="")
        key = rng.choice(keys)
        noun = self.lex.nouns[key]
        plural = not noun.mass and rng.random() < 0.3
        table = _DETS_PL if plural else _DETS_MASS if noun.mass else _DETS_SG
        if dets is not None or self.determiners is not None:
            allowed = {d for d, _ in table}
            for restriction in (dets, self.determiners):
                if restriction is not None:
                    allowed &= restriction
            table = tuple((d, w) for d, w in table if d in allowed) or (("the", 1),)
        det = _pick(rng, table)
        adjs: tuple[str, ...] = ()
        r = rng.random()
        quality, colour = self.quality[key], self.colour[key]
        if r < 0.30 and quality:
            adjs = (rng.choice(quality),)
        elif r < 0.40 and colour:
            adjs = (rng.choice(colour),)
        elif r < 0.46 and quality and colour:
            adjs = (rng.choice(quality), rng.choice(colour))
        pp = None
        if attr and noun.classes[0] in "PA" and rng.random() < 0.07 and self.things:
            prep = rng.choice(("with", "with", "from", "without"))
            if prep == "from":
                inner = self.np(rng, self.places, attr=False, dets=_DEFINITE_ONLY)
            else:
                pool = self.things + self.animals if prep == "with" else self.things
                inner = self.np(rng, pool, attr=False, dets=_DEFINITE_ONLY if prep == "without" else None)
            pp = AttrPP(prep, inner)
        return NP(key, det, plural, adjs, pp)

    def _located(self, rng: random.Random, letters: str, table: dict, preps: dict) -> PP | None:
        options = [k for k in letters if table.get(k)]
        if not options:
            return None
        k = rng.choice(options)
        return PP(preps[k][0], self.np(rng, table[k], attr=False))

    # --- clauses ----------------------------------------------------------------------------
    def clause(
        self,
        rng: random.Random,
        kind: str,
        *,
        frame: str | None = None,
        gap: str | None = None,
        antecedent: NP | None = None,
        time: str = "none",  # "none" | "front" (fronted only) | "any" (fronted or final)
        subj_rel: bool = False,
        obj_rel: bool = False,
        neg: bool = True,
        prefield_taken: bool = False,
    ) -> Clause | None:
        """One clause of ``kind`` main/question/sub/rel, or None if the draw has no verb."""
        if frame is None:
            frame = "tr" if obj_rel else _pick(rng, _FRAMES)
            if obj_rel and rng.random() < 0.25:
                frame = "dat"
        verbs = self.by_frame.get(frame, [])
        if gap == "subj":
            verbs = [v for v in verbs if antecedent.noun in self.subj_set[v.key]]
        elif gap == "obj":
            verbs = [v for v in verbs if antecedent.noun in self.obj_set[v.key]]
        if not verbs:
            return None
        v = rng.choice(verbs)
        subj = None
        if gap != "subj":
            subj = self.np(rng, v.subj, pron=self.person_subject[v.key] and not subj_rel)
        negated = neg and kind != "question" and rng.random() < 0.15
        tense = "past" if rng.random() < 0.3 else "present"
        if v.en_past == v.en and not (negated or kind == "question"):
            tense = "present"  # "they read" / "they cut" would be present or past: keep it present
        safe = _NEG_SAFE if negated else None
        obj = iobj = pp = None
        pred = very = None
        comp = None
        if frame in ("tr", "dat", "prep") and gap != "obj":
            obj = self.np(rng, v.obj, dets=safe)
        elif frame == "ditr":
            iobj = self.np(rng, v.iobj, dets=_DEFINITE_ONLY if negated else None)
            obj = self.np(rng, v.obj, dets=safe)
        elif frame == "motion":
            pp = self._located(rng, v.dirs, self.dir, DIRECTIONAL_PREPS)
            if pp is None:
                return None
        elif frame == "cop":
            if rng.random() < 0.35:
                pp = self._located(rng, "iobfna", self.loc, LOCATIVE_PREPS)
            if pp is None:
                who = antecedent if gap == "subj" else subj
                pool = self.person_adjs if who.noun in PRONOUNS else self.quality[who.noun] + self.colour[who.noun]
                if not pool:
                    return None
                pred = rng.choice(pool)
                if rng.random() < 0.2:
                    very = rng.choice(("very", "very", "very", "too"))
        elif frame in ("dass", "ob"):
            comp = self.clause(rng, "sub")
            if comp is None:
                return None
        if obj_rel and obj is not None:
            if obj.noun in PRONOUNS:
                return None
            gap_role = "obj" if rng.random() < 0.4 else "subj"
            rel = self.clause(rng, "rel", frame=None if gap_role == "subj" else rng.choice(("tr", "tr", "dat")),
                              gap=gap_role, antecedent=obj)
            if rel is None:
                return None
            obj = NP(obj.noun, obj.det, obj.plural, obj.adjs, None, rel)
        if subj_rel and subj is not None:
            gap_role = "obj" if rng.random() < 0.35 else "subj"
            rel = self.clause(rng, "rel", frame=None if gap_role == "subj" else rng.choice(("tr", "tr", "dat")),
                              gap=gap_role, antecedent=subj)
            if rel is None:
                return None
            subj = NP(subj.noun, subj.det, subj.plural, subj.adjs, None, rel)
        # Adjuncts: a locative or benefactive phrase, adverbs; never after a relativised object.
        tail_free = not obj_rel
        if "L" in v.flags:  # "lives" needs its "in the city"
            if not tail_free:
                return None
            pp = self._located(rng, "iobfna", self.loc, LOCATIVE_PREPS)
            if pp is None:
                return None
        elif pp is None and tail_free:
            if "l" in v.flags and rng.random() < 0.25:
                pp = self._located(rng, "iobfna", self.loc, LOCATIVE_PREPS)
            elif "b" in v.flags and not negated and rng.random() < 0.12:
                pp = PP("for", self.np(rng, self.persons, attr=False))
        freq = rng.choice(self.freq) if not negated and rng.random() < 0.12 else None
        manner = None
        if tail_free and "m" in v.flags and not negated and rng.random() < 0.12:
            manner = rng.choice(self.manner)
        adv = None
        front = None
        if time != "none" and kind in ("main", "question") and freq is None and rng.random() < 0.25:
            adv = rng.choice(self.time[tense])
            if kind == "main" and (time == "front" or rng.random() < 0.5):
                front = "time"
            elif kind == "question" and (time == "front" or not tail_free):
                adv = None
            elif not tail_free:
                front = "time"
        if (kind == "main" and front is None and not subj_rel and pp is not None
                and pp.prep in _FRONTABLE and rng.random() < 0.3):
            front = "pp"
        if subj_rel or prefield_taken:
            # The prefield is already filled: by the subject with its relative clause, or by a
            # fronted adverbial clause / "deshalb". A time adverbial can then only go last.
            front = None
            if adv is not None and (time != "any" or not tail_free):
                adv = None
        return Clause(v.key, subj, obj, iobj, pred, very, pp, tense, negated, freq, adv, manner,
                      front, comp, gap)

    def sentence(self, rng: random.Random) -> Sentence | None:
        """One derivation, or None when the draw fails a constraint (the caller redraws)."""
        r = rng.random()
        if r < 0.12:
            main = self.clause(rng, "question", time="any", frame=_pick(rng, _FRAMES))
            return None if main is None else Sentence(main, question=True)
        if r < 0.28:
            first = rng.random() < 0.35
            sub = self.clause(rng, "sub")
            main = self.clause(rng, "main", time="any" if first else "front", prefield_taken=first)
            if sub is None or main is None:
                return None
            return Sentence(main, sub=(rng.choice(tuple(SUBORDINATORS)), sub), sub_first=first)
        if r < 0.38:
            main = self.clause(rng, "main", frame=rng.choice(("dass", "dass", "ob")), time="front")
            return None if main is None else Sentence(main)
        if r < 0.47:
            main = self.clause(rng, "main", subj_rel=True, time="any")
            return None if main is None else Sentence(main)
        if r < 0.56:
            main = self.clause(rng, "main", obj_rel=True, time="front")
            return None if main is None else Sentence(main)
        if r < 0.66:
            conj = rng.choice(tuple(COORDINATORS))
            first = self.clause(rng, "main", time="any")
            second = self.clause(rng, "main", time="any", prefield_taken=COORDINATORS[conj][2])
            if first is None or second is None:
                return None
            return Sentence(first, coord=(conj, second))
        main = self.clause(rng, "main", time="any")
        return None if main is None else Sentence(main)

    def samples(self, rng: random.Random) -> Iterator[Sample]:
        """An endless stream of realised samples within the length limits."""
        while True:
            s = self.sentence(rng)
            if s is None:
                continue
            sample = self.realizer.realize(s)
            words = sample.en.count(" ") + 1
            if MIN_WORDS <= words <= MAX_WORDS:
                yield sample


# Locative phrases that may open a main clause ("In the garden the man reads a book.").
_FRONTABLE = frozenset(en for en, _, _ in LOCATIVE_PREPS.values())


@lru_cache(maxsize=1)
def get_generator() -> Generator:
    """The generator over the full lexicon, built once per process."""
    return Generator(default_lexicon())


def generate_samples(seed: int, n: int, generator: Generator | None = None) -> list[Sample]:
    """``n`` annotated samples drawn from ``seed`` (duplicates kept: this is the raw stream)."""
    stream = (generator or get_generator()).samples(random.Random(seed))
    return [next(stream) for _ in range(n)]


def generate_corpus(
    seed: int = 0, n_train: int = 20000, n_valid: int = 1000, n_test: int = 1000
) -> dict[str, list[tuple[str, str]]]:
    """The synthetic English→German corpus: ``{"train", "valid", "test"}`` → (en, de) pairs.

    Pairs are distinct and the splits disjoint on both sides (no English and no German sentence
    occurs twice anywhere). Test is drawn first, then valid, then train, so the evaluation splits
    of a seed do not change when ``n_train`` does. The result is memoised per process (a loader
    asks once per split); each call gets its own lists.
    """
    for name, n in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test)):
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"{name} must be an int >= 0 (got {n!r})")
    cached = _corpus(int(seed), n_train, n_valid, n_test)
    return {split: list(pairs) for split, pairs in cached.items()}


@lru_cache(maxsize=2)
def _corpus(seed: int, n_train: int, n_valid: int, n_test: int) -> dict[str, tuple[tuple[str, str], ...]]:
    stream = get_generator().samples(random.Random(seed))
    seen_en: set[str] = set()
    seen_de: set[str] = set()
    out: dict[str, list[tuple[str, str]]] = {"test": [], "valid": [], "train": []}
    for split, n in (("test", n_test), ("valid", n_valid), ("train", n_train)):
        misses = 0
        while len(out[split]) < n:
            s = next(stream)
            if s.en in seen_en or s.de in seen_de:
                misses += 1
                if misses > 100 * (n + 100):
                    raise ValueError(f"the grammar cannot supply {n} more distinct {split} pairs")
                continue
            seen_en.add(s.en)
            seen_de.add(s.de)
            out[split].append((s.en, s.de))
    return {"train": tuple(out["train"]), "valid": tuple(out["valid"]), "test": tuple(out["test"])}
