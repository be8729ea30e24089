"""The word-by-word dictionary baseline the translation model must beat.

A bilingual dictionary is built from the lexicon: every English word form (and the few fixed
multi-word expressions: ``in front of``, ``picks up``, ``in the morning`` …) maps to one German
form — nouns to their nominative, adjectives to their citation form, articles to the masculine
nominative, verbs to the matching German form (English past → German participle). Translation
keeps the English word order and drops do-support. It gets the words mostly right and the
grammar mostly wrong (case, gender, V2, verb-final, separable prefixes, kein), which is what the
model has to learn — hence a mediocre but non-trivial BLEU.
"""

from __future__ import annotations

from functools import lru_cache

import sacrebleu

from apps.translation.grammar.lexicon import Lexicon, default_lexicon
from apps.translation.grammar.words_other import (
    ATTRIBUTIVE_PREPS,
    BENEFACTIVE_PREP,
    COORDINATORS,
    DETERMINERS,
    DIRECTIONAL_PREPS,
    INTENSIFIERS,
    LOCATIVE_PREPS,
    PRONOUNS,
    SUBORDINATORS,
)

_MAX_PHRASE = 3  # longest multi-word entry, in English words

# Function words with a fixed gloss; "" drops the word (do-support has no German counterpart).
_FUNCTION_WORDS = {
    "do": "", "does": "", "did": "", "not": "nicht", "am": "bin", "is": "ist", "are": "sind",
    "was": "war", "were": "waren", "an": "ein", "that": "dass", "whether": "ob",
    "who": "der", "whom": "den", "about": "über", "of": "von",
}


@lru_cache(maxsize=1)
def _dictionary() -> dict[str, str]:
    return build_dictionary(default_lexicon())


def build_dictionary(lex: Lexicon) -> dict[str, str]:
    """English word form or fixed phrase → German gloss (the first entry of a form wins)."""
    d: dict[str, str] = {}

    def put(en: str, de: str) -> None:
        d.setdefault(en, de)

    endings = {"def": "er", "dem": "er", "every": "er", "quant": "e"}  # masculine nominative
    for det, (kind, stem) in DETERMINERS.items():
        if det:
            put(det, (stem if kind != "def" else "d") + endings.get(kind, ""))
    for en, (g, _, _) in PRONOUNS.items():
        put(en, g)
    for en, g, _ in (*LOCATIVE_PREPS.values(), *DIRECTIONAL_PREPS.values()):
        put(en, g)
    for en, (g, _) in ATTRIBUTIVE_PREPS.items():
        put(en, g)
    put(BENEFACTIVE_PREP[0], BENEFACTIVE_PREP[1])
    for table in (SUBORDINATORS, INTENSIFIERS):
        for en, g in table.items():
            put(en, g)
    for en, (g, _, _) in COORDINATORS.items():
        put(en, g)
    for en, g in _FUNCTION_WORDS.items():
        put(en, g)
    for n in lex.nouns.values():
        put(n.key, n.de_sg)
        if n.de_pl:
            put(n.en_pl, n.de_pl)
    for a in lex.adjectives.values():
        put(a.key, a.de)
    for a in lex.adverbs.values():
        put(a.key, a.de)
    for v in lex.verbs.values():
        if v.frame == "cop":
            continue
        sep = f" {v.de_prefix}" if v.de_prefix else ""
        put(v.en, v.de_full_inf)
        put(v.en_3sg, v.de_3sg + sep)
        put(v.en_past, v.de_part)
    return d


def _tokens(sentence: str) -> list[str]:
    out = []
    for word in sentence.split():
        tail = []
        while word and word[-1] in ",.?!":
            tail.insert(0, word[-1])
            word = word[:-1]
        if word:
            out.append(word)
        out.extend(tail)
    if out and out[0] != "I":
        out[0] = out[0][:1].lower() + out[0][1:]
    return out


def dictionary_baseline(en_sentence: str) -> str:
    """Translate word by word (longest dictionary match first), keeping the English order."""
    d = _dictionary()
    words = _tokens(en_sentence)
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + n])
            if phrase in d:
                if d[phrase]:
                    out.append(d[phrase])
                i += n
                break
        else:  # unknown word (or punctuation): copy it
            out.append(words[i])
            i += 1
    text = " ".join(out)
    for p in (",", ".", "?", "!"):
        text = text.replace(" " + p, p)
    return text[:1].upper() + text[1:]


def score_baseline(pairs: list[tuple[str, str]]) -> sacrebleu.metrics.bleu.BLEUScore:
    """sacreBLEU corpus BLEU (default 13a tokenisation, cased) of the baseline on ``pairs``."""
    hyps = [dictionary_baseline(en) for en, _ in pairs]
    return sacrebleu.corpus_bleu(hyps, [[de for _, de in pairs]])


def baseline_bleu(seed: int = 0, split: str = "test") -> float:
    """The dictionary baseline's BLEU on one split of the corpus of ``seed``."""
    from apps.translation.grammar.generator import generate_corpus

    return score_baseline(generate_corpus(seed)[split]).score
