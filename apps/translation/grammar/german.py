"""German inflection: determiners, adjective endings, noun case forms, verb conjugation.

The three adjective declensions follow the standard tables (Duden, Grammatik §§ 477ff.):
weak after der-words (der, dieser, jeder), mixed after ein-words in the singular (ein, kein,
mein, …), strong with no inflected determiner (bare plurals and mass nouns, numerals, einige,
viele). Genitive is not generated, so only nominative, accusative and dative appear.
"""

from __future__ import annotations

from apps.translation.grammar.lexicon import Noun, Verb
from apps.translation.grammar.words_other import CONTRACTIONS

_DEFINITE = {
    "nom": {"m": "der", "f": "die", "n": "das", "pl": "die"},
    "acc": {"m": "den", "f": "die", "n": "das", "pl": "die"},
    "dat": {"m": "dem", "f": "der", "n": "dem", "pl": "den"},
}
# Endings of der-words (dieser, jeder) and, in the plural, of einige/viele.
_DER_WORD = {
    "nom": {"m": "er", "f": "e", "n": "es", "pl": "e"},
    "acc": {"m": "en", "f": "e", "n": "es", "pl": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "pl": "en"},
}
# Endings of ein-words: no ending in nominative masculine/neuter and accusative neuter.
_EIN_WORD = {
    "nom": {"m": "", "f": "e", "n": "", "pl": "e"},
    "acc": {"m": "en", "f": "e", "n": "", "pl": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "pl": "en"},
}
_WEAK = {
    "nom": {"m": "e", "f": "e", "n": "e", "pl": "en"},
    "acc": {"m": "en", "f": "e", "n": "e", "pl": "en"},
    "dat": {"m": "en", "f": "en", "n": "en", "pl": "en"},
}
_MIXED = {
    "nom": {"m": "er", "f": "e", "n": "es", "pl": "en"},
    "acc": {"m": "en", "f": "e", "n": "es", "pl": "en"},
    "dat": {"m": "en", "f": "en", "n": "en", "pl": "en"},
}
_STRONG = {
    "nom": {"m": "er", "f": "e", "n": "es", "pl": "e"},
    "acc": {"m": "en", "f": "e", "n": "es", "pl": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "pl": "en"},
}
# Which adjective declension each determiner kind selects.
DECLENSION = {
    "def": "weak",
    "dem": "weak",
    "every": "weak",
    "indef": "mixed",
    "poss": "mixed",
    "kein": "mixed",
    "quant": "strong",
    "num": "strong",
    "none": "strong",
}
_ADJ_TABLES = {"weak": _WEAK, "mixed": _MIXED, "strong": _STRONG}

RELATIVE_PRONOUNS = {
    "nom": {"m": "der", "f": "die", "n": "das", "pl": "die"},
    "acc": {"m": "den", "f": "die", "n": "das", "pl": "die"},
    "dat": {"m": "dem", "f": "der", "n": "dem", "pl": "denen"},
}


def gnum(gender: str, number: str) -> str:
    """The column of the declension tables: the gender in the singular, ``pl`` in the plural."""
    return "pl" if number == "pl" else gender


def determiner(kind: str, stem: str, gender: str, number: str, case: str) -> str:
    """The inflected determiner (``""`` for none): ``determiner("poss", "unser", "m", "sg",
    "acc") == "unseren"``."""
    col = gnum(gender, number)
    if kind == "def":
        return _DEFINITE[case][col]
    if kind in ("dem", "every", "quant"):
        return stem + _DER_WORD[case][col]
    if kind in ("indef", "poss", "kein"):
        return stem + _EIN_WORD[case][col]
    if kind == "num":
        return stem
    return ""


def adjective(stem: str, det_kind: str, gender: str, number: str, case: str) -> str:
    """Attributive adjective: the stem plus the ending its determiner's declension selects."""
    table = _ADJ_TABLES[DECLENSION[det_kind]]
    return stem + table[case][gnum(gender, number)]


def noun_form(noun: Noun, number: str, case: str) -> str:
    """Case form of a noun: n-declension singulars and dative plurals take ``-(e)n``."""
    if number == "pl":
        assert noun.de_pl is not None, f"{noun.key} has no plural"
        if case == "dat" and not noun.de_pl.endswith(("n", "s")):
            return noun.de_pl + "n"
        return noun.de_pl
    if noun.weak and case != "nom":
        return noun.weak
    return noun.de_sg


def contract(prep: str, article: str) -> str | None:
    """``in`` + ``dem`` → ``im`` etc.; None where German keeps them apart."""
    return CONTRACTIONS.get((prep, article))


def finite(verb: Verb, person: int, number: str) -> str:
    """Present-tense finite form without the separable prefix (``ruft``, ``bin``, ``weiß``)."""
    if verb.de_inf == "sein":
        if number == "pl":
            return "sind"
        return "bin" if person == 1 else "ist"
    if number == "pl":
        return verb.de_inf
    return verb.de_1sg if person == 1 else verb.de_3sg


_AUX_FORMS = {
    "haben": {(1, "sg"): "habe", (3, "sg"): "hat", (1, "pl"): "haben", (3, "pl"): "haben"},
    "sein": {(1, "sg"): "bin", (3, "sg"): "ist", (1, "pl"): "sind", (3, "pl"): "sind"},
}


def auxiliary(aux: str, person: int, number: str) -> str:
    """Present of the perfect auxiliary (``haben`` / ``sein``)."""
    return _AUX_FORMS[aux][(person, number)]
