"""Derivations (what a sentence says) and annotations (where its German pieces ended up).

A derivation is language-neutral: :class:`Sentence` → :class:`Clause` → :class:`NP`, keyed by
English lemmas of the lexicon. ``realize.py`` turns one derivation into an English and a German
string, so the pair is a *synchronous* derivation and the mapping is a function. Tests build
derivations by hand and compare with hand-written German; the generator samples them.

Annotations record, with token indices into the German token list, what the grammar decided
(case, gender, verb position...), so tests can check the surface forms against their own tables.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NP:
    """A noun phrase. ``noun`` is a noun key or a subject pronoun (``I he she we they``)."""

    noun: str
    det: str = "the"  # English determiner key, "" for none (bare plural / mass noun)
    plural: bool = False
    adjs: tuple[str, ...] = ()
    pp: "AttrPP | None" = None  # "the man with the hat"
    rel: "Clause | None" = None  # a relative clause; its ``gap`` names the relativised role


@dataclass(frozen=True)
class AttrPP:
    """A prepositional phrase inside a noun phrase: ``with`` / ``from`` / ``without``."""

    prep: str
    np: NP


@dataclass(frozen=True)
class PP:
    """A clause-level prepositional phrase; the English preposition decides its kind
    (``in``: locative, dative; ``into``: directional, accusative; ``for``: benefactive)."""

    prep: str
    np: NP


@dataclass(frozen=True)
class Clause:
    """One clause. ``obj`` is the accusative object (tr, ditr), the dative object (dat) or the
    prepositional object (prep); ``iobj`` the dative of a ditransitive."""

    verb: str  # verb key, e.g. "see:tr", "wait:prep:for", "be:cop"
    subj: NP | None = None  # None when relativised (gap="subj")
    obj: NP | None = None
    iobj: NP | None = None
    pred: str | None = None  # copula: predicative adjective
    very: str | None = None  # intensifier before ``pred``: "very" / "too"
    pp: PP | None = None
    tense: str = "present"  # "present" | "past" (German: perfect; Präteritum for sein)
    neg: bool = False
    freq: str | None = None
    time: str | None = None
    manner: str | None = None
    front: str | None = None  # main clauses: None (subject first) | "time" | "pp"
    comp: "Clause | None" = None  # complement clause of a dass/ob verb
    gap: str | None = None  # relative clauses: "subj" | "obj"


@dataclass(frozen=True)
class Sentence:
    """A sentence: a main clause, optionally with an adverbial clause or a coordinated clause."""

    main: Clause
    question: bool = False
    sub: tuple[str, Clause] | None = None  # (English subordinator, clause)
    sub_first: bool = False  # adverbial clause fronted ("Because ..., ...")
    coord: tuple[str, Clause] | None = None  # (English coordinator, second main clause)


# --- annotations (token indices into the German token list, end exclusive) -------------------


@dataclass(frozen=True)
class NPAnn:
    """A German noun phrase as realised. ``start`` is the determiner (or the fused
    preposition+article token when ``fused``), ``head`` the noun (or pronoun)."""

    start: int
    head: int
    det_kind: str  # def dem every indef poss kein quant num none pron
    det_stem: str
    gender: str
    number: str
    case: str
    noun: str  # noun key (English) or the German pronoun
    adjs: tuple[str, ...]  # adjective keys, in order, directly before the head
    prep: str | None = None  # governing German preposition
    fused: bool = False  # preposition and article contracted into tokens[start]


@dataclass(frozen=True)
class ClauseAnn:
    """A German clause: kind ``main`` (declarative, V2), ``question`` (V1), ``sub`` / ``rel``
    (verb-final). ``finite`` is the finite verb, ``nonfinite`` participle / particle indices."""

    kind: str
    start: int
    end: int
    finite: int
    nonfinite: tuple[int, ...]
    verb: str  # verb key
    person: int
    number: str
    tense: str
    prefield: tuple[int, int] | None = None  # main clauses: the first constituent


@dataclass(frozen=True)
class RelAnn:
    """A relative pronoun and what it agrees with (antecedent gender/number, case by role)."""

    index: int
    gender: str
    number: str
    case: str


@dataclass(frozen=True)
class Sample:
    """One realised pair with its derivation and the German annotations."""

    en: str
    de: str
    de_tokens: tuple[str, ...]
    anns: tuple[object, ...]
    sentence: Sentence
