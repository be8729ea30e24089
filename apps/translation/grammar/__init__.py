"""A synchronous English→German grammar: the translation app's embedded offline corpus.

One derivation yields both sentences, so every English sentence has exactly one German
translation, with the German structure a small translation model has to learn: gender and case
agreement of articles and adjectives (strong/weak/mixed), plurals, subject–verb agreement,
verb-second main clauses, verb-final subordinate and relative clauses, separable verbs, the
perfect with haben/sein, kein-negation, prepositions with dative/accusative and contractions.

Public API::

    generate_corpus(seed=0, n_train=20000, n_valid=1000, n_test=1000)
        -> {"train"|"valid"|"test": [(english, german), ...]}
    write_corpus(folder, corpus=None, *, seed=0, names=MULTI30K_NAMES, compress=False)
        -> paths of {train,val,test_2016_flickr}.{en,de}
    generate_samples(seed, n) -> [Sample]   # annotated derivations, for tests and inspection
    dictionary_baseline(english) -> german  # word-by-word, English order
    score_baseline(pairs) -> sacrebleu BLEUScore;  baseline_bleu(seed=0, split="test") -> float
"""

from apps.translation.grammar.baseline import baseline_bleu, dictionary_baseline, score_baseline
from apps.translation.grammar.corpus import MULTI30K_NAMES, write_corpus
from apps.translation.grammar.generator import generate_corpus, generate_samples
from apps.translation.grammar.lexicon import default_lexicon
from apps.translation.grammar.realize import Realizer
from apps.translation.grammar.spec import NP, PP, AttrPP, Clause, Sample, Sentence

__all__ = [
    "MULTI30K_NAMES",
    "NP",
    "PP",
    "AttrPP",
    "Clause",
    "Realizer",
    "Sample",
    "Sentence",
    "baseline_bleu",
    "default_lexicon",
    "dictionary_baseline",
    "generate_corpus",
    "generate_samples",
    "score_baseline",
    "write_corpus",
]
