"""The synthetic English→German grammar (apps.translation.grammar): corpus properties, and the
German grammar itself checked on generated samples against this file's own tables.

The declension and conjugation tables below are written out independently of
``apps/translation/grammar/german.py`` (different layout, rules stated as rules), so a wrong
ending in the generator fails here. Hand-written golden sentences pin down complete outputs.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from apps.translation.grammar import (
    NP,
    PP,
    AttrPP,
    Clause,
    Realizer,
    Sentence,
    default_lexicon,
    dictionary_baseline,
    generate_corpus,
    generate_samples,
    score_baseline,
    write_corpus,
)
from apps.translation.grammar.generator import Generator
from apps.translation.grammar.spec import ClauseAnn, NPAnn, RelAnn

ROOT = Path(__file__).resolve().parents[1]
LEX = default_lexicon()

# --- independent German tables ----------------------------------------------------------------
COL = {"m": 0, "f": 1, "n": 2, "pl": 3}
DEFINITE = {"nom": "der die das die", "acc": "den die das die", "dat": "dem der dem den"}
DER_WORD_ENDINGS = {"nom": "er e es e", "acc": "en e es e", "dat": "em er em en"}  # = strong adj.
EIN_WORD_ENDINGS = {"nom": "- e - e", "acc": "en e - e", "dat": "em er em en"}
RELATIVE = {"nom": "der die das die", "acc": "den die das die", "dat": "dem der dem denen"}
CONTRACTED = {("in", "dem"): "im", ("in", "das"): "ins", ("an", "dem"): "am", ("an", "das"): "ans",
              ("zu", "dem"): "zum", ("zu", "der"): "zur", ("von", "dem"): "vom"}
DATIVE_VERBS = {"helfen", "danken", "folgen", "antworten", "vertrauen", "gehören", "gratulieren",
                "zuhören", "zuwinken"}
SEIN_PERFECT = {"gehen", "kommen", "fahren", "fliegen", "rennen", "laufen", "schwimmen", "springen",
                "klettern", "reisen", "reiten", "fallen", "aufwachen", "einschlafen", "aufstehen",
                "zurückkommen", "ankommen", "verschwinden", "folgen", "sein"}
IRREGULAR_3SG = {"schlafen": "schläft", "lesen": "liest", "essen": "isst", "sehen": "sieht",
                 "fahren": "fährt", "laufen": "läuft", "halten": "hält", "tragen": "trägt",
                 "nehmen": "nimmt", "vergessen": "vergisst", "waschen": "wäscht", "fangen": "fängt",
                 "treffen": "trifft", "werfen": "wirft", "stehlen": "stiehlt", "helfen": "hilft",
                 "geben": "gibt", "sprechen": "spricht", "fallen": "fällt", "laden": "lädt",
                 "haben": "hat", "wissen": "weiß", "mögen": "mag"}


def cell(table: dict[str, str], case: str, col: str) -> str:
    form = table[case].split()[COL[col]]
    return "" if form == "-" else form


def declension(det_kind: str) -> str:
    if det_kind in ("def", "dem", "every"):
        return "weak"
    if det_kind in ("indef", "poss", "kein"):
        return "mixed"
    return "strong"


def adjective_ending(decl: str, case: str, col: str) -> str:
    if decl == "strong":
        return cell(DER_WORD_ENDINGS, case, col)
    if col == "pl" or case == "dat":
        return "en"
    if decl == "weak":  # -e in the five "nominative-like" cells, else -en
        return "e" if case == "nom" or col in ("f", "n") else "en"
    if col == "m":  # mixed
        return "er" if case == "nom" else "en"
    return "e" if col == "f" else "es"


def article(det_kind: str, stem: str, case: str, col: str) -> str:
    if det_kind == "def":
        return cell(DEFINITE, case, col)
    if det_kind in ("dem", "every", "quant"):
        return stem + cell(DER_WORD_ENDINGS, case, col)
    if det_kind in ("indef", "poss", "kein"):
        return stem + cell(EIN_WORD_ENDINGS, case, col)
    return stem if det_kind == "num" else ""


def present(base: str, person: int, number: str) -> str:
    """Present tense of a verb without separable prefix, by rule plus the irregular list."""
    if base == "sein":
        return "sind" if number == "pl" else ("bin" if person == 1 else "ist")
    if number == "pl":
        return base
    if person == 1:
        if base in ("wissen", "mögen"):
            return IRREGULAR_3SG[base]
        return base[:-3] + "le" if base.endswith("eln") else base[:-1] if base.endswith("ern") else base[:-2] + "e"
    if base in IRREGULAR_3SG:
        return IRREGULAR_3SG[base]
    if base.endswith(("eln", "ern")):
        return base[:-1] + "t"
    stem = base[:-2]
    return stem + ("et" if stem.endswith(("t", "d", "chn", "ffn", "tm", "gn")) else "t")


# --- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(0)


@pytest.fixture(scope="module")
def samples():
    return generate_samples(123, 3000)


def realize(sentence: Sentence) -> tuple[str, str]:
    s = Realizer(LEX).realize(sentence)
    return s.en, s.de


# --- corpus ---------------------------------------------------------------------------------------
def test_corpus_sizes_distinct_and_disjoint(corpus):
    assert {k: len(v) for k, v in corpus.items()} == {"train": 20000, "valid": 1000, "test": 1000}
    pairs = [p for split in corpus.values() for p in split]
    assert len(set(pairs)) == 22000
    for side in (0, 1):  # disjoint by source and by target sentence, across and within splits
        assert len({p[side] for p in pairs}) == 22000
    for en, de in pairs:
        assert en[0].isupper() and de[0].isupper()
        assert en[-1] in ".?" and de[-1] == en[-1]
        assert 4 <= len(en.split()) <= 20


def test_corpus_is_deterministic_across_processes_and_seed_dependent():
    code = ("import hashlib, json; from apps.translation.grammar import generate_corpus; "
            "print(hashlib.sha256(json.dumps(generate_corpus(5, 1500, 100, 100)).encode()).hexdigest())")
    digests = []
    for hashseed in ("1", "2"):  # string hashing differs between these processes
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                             text=True, check=True)
        digests.append(out.stdout.strip())
    here = hashlib.sha256(json.dumps(generate_corpus(5, 1500, 100, 100)).encode()).hexdigest()
    assert digests == [here, here]
    other = generate_corpus(6, 1500, 100, 100)
    assert other != generate_corpus(5, 1500, 100, 100)
    assert len(set(other["test"]) & set(generate_corpus(5, 1500, 100, 100)["test"])) < 20


def test_evaluation_splits_do_not_depend_on_train_size():
    small, large = generate_corpus(3, 100, 50, 50), generate_corpus(3, 400, 50, 50)
    assert small["test"] == large["test"] and small["valid"] == large["valid"]
    assert large["train"][:100] == small["train"]


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="n_train"):
        generate_corpus(0, n_train=-1)


def test_write_corpus_multi30k_layout(tmp_path):
    corpus = generate_corpus(2, 300, 40, 30)
    written = write_corpus(tmp_path / "plain", corpus)
    names = sorted(p.name for p in written)
    assert names == sorted(f"{s}.{l}" for s in ("train", "val", "test_2016_flickr") for l in ("en", "de"))
    for split, stem in (("train", "train"), ("valid", "val"), ("test", "test_2016_flickr")):
        en = (tmp_path / "plain" / f"{stem}.en").read_text("utf-8").splitlines()
        de = (tmp_path / "plain" / f"{stem}.de").read_text("utf-8").splitlines()
        assert list(zip(en, de)) == corpus[split]
    a = write_corpus(tmp_path / "a", corpus, compress=True)
    b = write_corpus(tmp_path / "b", corpus, compress=True)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]  # no timestamps inside
    with gzip.open(tmp_path / "a" / "val.de.gz", "rt", encoding="utf-8") as f:
        assert [line.rstrip("\n") for line in f] == [de for _, de in corpus["valid"]]
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # no temp files left


def test_vocabulary_has_several_hundred_words(corpus):
    assert LEX.size() >= 450
    assert len(LEX.nouns) >= 200 and len(LEX.adjectives) >= 60
    assert len({v.de_full_inf for v in LEX.verbs.values()}) >= 90
    german_types = {w for _, de in corpus["train"] for w in re.findall(r"\w+", de)}
    english_types = {w.lower() for en, _ in corpus["train"] for w in re.findall(r"\w+", en)}
    assert len(german_types) >= 1500 and len(english_types) >= 800


def test_english_determines_the_german():
    """In a tiny grammar many derivations repeat; every English string must keep one German."""
    verbs = ["sleep:intr", "laugh:intr", "read:intr", "go:motion", "see:tr", "call:tr", "read:tr",
             "know:tr", "help:dat", "answer:dat", "give:ditr", "read:ditr", "wait:prep:for",
             "laugh:prep:at", "be:cop", "say:dass", "know:dass", "ask:ob", "cut:tr"]
    nouns = ["man", "woman", "dog", "book", "garden", "table", "story", "window", "answer", "bread"]
    tiny = LEX.subset(nouns, verbs, ["big"], ["today", "often", "quickly", "yesterday"])
    gen = Generator(tiny, determiners=("the",), pronoun_rate=0.0)
    german: dict[str, set[str]] = defaultdict(set)
    samples = generate_samples(5, 8000, gen)
    for s in samples:
        german[s.en].add(s.de)
    assert len(samples) - len(german) > 400  # enough repeats for the check to have teeth
    ambiguous = {en: de for en, de in german.items() if len(de) > 1}
    assert not ambiguous


# --- the grammar on generated samples ------------------------------------------------------------
def anns(samples, kind):
    return [(s, a) for s in samples for a in s.anns if isinstance(a, kind)]


def check_np(s, a: NPAnn) -> tuple[str, str, str]:
    """Compare one realised German noun phrase with this file's tables; return its cell."""
    toks = s.de_tokens
    noun = LEX.nouns[a.noun]
    col = "pl" if a.number == "pl" else noun.gender
    art = article(a.det_kind, a.det_stem, a.case, col)
    decl = declension(a.det_kind)
    if a.number == "pl":
        head = noun.de_pl + ("n" if a.case == "dat" and not noun.de_pl.endswith(("n", "s")) else "")
    else:
        head = noun.weak if noun.weak and a.case != "nom" else noun.de_sg
    adjs = [LEX.adjectives[k].stem + adjective_ending(decl, a.case, col) for k in a.adjs]
    if a.fused:
        first = [CONTRACTED[(a.prep, art)]]
    else:
        assert (a.prep, art) not in CONTRACTED, s.de  # contraction is obligatory here
        first = [art] if art else []
        if a.prep:
            assert toks[a.start - 1].lower() == a.prep, s.de
    expected = first + adjs + [head]
    got = [t.lower() for t in toks[a.start : a.head + 1]]
    assert got == [t.lower() for t in expected], (s.de, a)
    assert toks[a.head][0].isupper(), s.de  # German nouns are capitalised
    return decl, a.case, col


def test_noun_phrase_agreement_on_samples(samples):
    seen, with_adjectives = set(), set()
    for s, a in anns(samples, NPAnn):
        if a.det_kind != "pron":
            cell_ = check_np(s, a)
            seen.add(cell_)
            if a.adjs:
                with_adjectives.add(cell_)
    # strong/mixed/weak x 3 cases x 4 columns; the strong singular needs a bare mass noun, rare
    assert len(seen) >= 34 and len(with_adjectives) >= 32, sorted(seen)


def test_noun_phrase_paradigms():
    """Every determiner x gender x number x case, with adjectives, through the realiser."""
    realizer = Realizer(LEX)
    nouns = {"man": "m", "woman": "f", "child": "n", "coffee": "m", "milk": "f", "water": "n"}
    seen = set()
    for det in ("the", "this", "these", "every", "a", "my", "our", "some", "many", "two", ""):
        for noun in nouns:
            mass = LEX.nouns[noun].mass
            for plural in (False, True):
                if mass and (plural or det in ("a", "every")):
                    continue
                if det in ("a", "this", "every") and plural or det in ("these", "some", "many", "two") and not plural:
                    continue
                if det == "" and not (plural or mass):
                    continue
                np = NP(noun, det, plural, ("big", "red"))
                clauses = [Clause("sleep:intr", np), Clause("see:tr", NP("I", ""), obj=np),
                           Clause("help:dat", NP("I", ""), obj=np),
                           Clause("sit:intr", NP("I", ""), pp=PP("next to", np)),
                           Clause("go:motion", NP("I", ""), pp=PP("into", np)),
                           Clause("see:tr", NP("I", ""), obj=np, neg=True)]
                for clause in clauses:
                    s = realizer.realize(Sentence(clause))
                    for a in s.anns:
                        if isinstance(a, NPAnn) and a.det_kind != "pron":
                            seen.add(check_np(s, a))
    assert len(seen) == 36


def test_relative_pronouns_agree_with_antecedent_and_take_case_from_role(samples):
    checked = 0
    for s in samples:
        rels = [a for a in s.anns if isinstance(a, RelAnn)]
        clauses = [s.sentence.main] + ([s.sentence.coord[1]] if s.sentence.coord else [])
        expected = []
        for c in clauses:
            for np in (c.subj, c.obj):
                if np is not None and np.rel is not None:
                    rel = np.rel
                    verb = LEX.verbs[rel.verb]
                    case = "nom" if rel.gap == "subj" else ("dat" if verb.de_full_inf in DATIVE_VERBS else "acc")
                    col = "pl" if np.plural else LEX.nouns[np.noun].gender
                    expected.append(cell(RELATIVE, case, col))
        assert [s.de_tokens[r.index] for r in rels] == expected, s.de
        assert all(s.de_tokens[r.index - 1] == "," for r in rels), s.de
        checked += len(rels)
    assert checked > 300


def own_subject(s, clause: ClauseAnn) -> tuple[int, str]:
    """(person, number) of the clause's own subject, read off the German annotations: the
    nominative relative pronoun opening it, or the first nominative noun phrase outside the
    clauses nested in it."""
    nested = [c for c in s.anns if isinstance(c, ClauseAnn) and c is not clause
              and clause.start <= c.start and c.end <= clause.end]
    for a in s.anns:
        if isinstance(a, RelAnn) and a.index == clause.start and a.case == "nom":
            return 3, a.number
    for a in s.anns:
        if (isinstance(a, NPAnn) and a.case == "nom" and a.prep is None
                and clause.start <= a.head < clause.end
                and not any(c.start <= a.head < c.end for c in nested)):
            return (1 if a.noun in ("ich", "wir") else 3), a.number
    raise AssertionError(f"no subject in {s.de}")


def test_subject_verb_agreement_and_auxiliaries(samples):
    kinds = set()
    for s, c in anns(samples, ClauseAnn):
        verb = LEX.verbs[c.verb]
        person, number = own_subject(s, c)
        assert (person, number) == (c.person, c.number), s.de
        fin = s.de_tokens[c.finite]
        if c.tense == "present":
            form = present(verb.de_inf, person, number)
            expected = verb.de_prefix + form if c.kind in ("sub", "rel") else form
            if verb.de_prefix and c.kind in ("main", "question"):  # the particle closes the clause
                assert [s.de_tokens[i] for i in c.nonfinite] == [verb.de_prefix], s.de
        elif verb.de_inf == "sein":
            expected = "waren" if number == "pl" else "war"
        else:
            aux = "sein" if verb.de_full_inf in SEIN_PERFECT else "haben"
            expected = present(aux, person, number)
            assert [s.de_tokens[i] for i in c.nonfinite] == [verb.de_part], s.de
        assert fin.lower() == expected, (s.de, c)
        kinds.add((c.kind, c.tense, bool(verb.de_prefix)))
    assert len(kinds) >= 14  # main/question/sub/rel x present/past x separable or not


def test_main_clauses_are_verb_second_questions_verb_first(samples):
    coordinators_and_such = {"deshalb"}
    time_adverbs = {a.de for a in LEX.adverbs.values() if a.kind == "time"}
    prefield_kinds = set()
    for s, c in anns(samples, ClauseAnn):
        toks = s.de_tokens
        if c.kind == "question":
            assert c.finite == c.start == 0 and toks[-1] == "?", s.de
            continue
        if c.kind != "main":
            continue
        start, end = c.prefield
        assert start == c.start < end == c.finite, s.de  # exactly one constituent, then the verb
        first = " ".join(toks[start:end]).lower()
        sub = [a for a in s.anns if isinstance(a, ClauseAnn) and a.kind == "sub" and a.start == start]
        nps = [a for a in s.anns if isinstance(a, NPAnn) and a.start in (start, start + 1)]
        if first in coordinators_and_such:
            prefield_kinds.add("deshalb")
        elif first in {t.lower() for t in time_adverbs}:
            prefield_kinds.add("time")
        elif sub:  # a fronted adverbial clause, closed by its comma
            assert sub[0].end == end - 1 and toks[end - 1] == ",", s.de
            prefield_kinds.add("clause")
        elif nps and nps[0].prep is not None:  # a fronted prepositional phrase
            assert nps[0].head == end - 1, s.de
            prefield_kinds.add("pp")
        else:  # the subject, maybe with its PP or relative clause
            np = nps[0]
            assert np.case == "nom" and np.start == start, s.de
            assert np.head == end - 1 or toks[np.head + 1] in (",", "mit", "aus", "ohne"), s.de
            prefield_kinds.add("subject")
        # the right bracket closes the clause: participle or particle stand last
        if c.nonfinite:
            assert c.nonfinite[-1] == c.end - 1, s.de
            assert toks[c.end] in (",", ".", "und"), s.de
    assert prefield_kinds == {"subject", "time", "pp", "clause", "deshalb"}


def test_subordinate_and_relative_clauses_are_verb_final(samples):
    intros = {"weil", "obwohl", "wenn", "während", "bevor", "dass", "ob"}
    counts = defaultdict(int)
    for s, c in anns(samples, ClauseAnn):
        if c.kind not in ("sub", "rel"):
            continue
        toks = s.de_tokens
        assert c.finite == c.end - 1, s.de  # the finite verb is last ...
        assert toks[c.end] in (",", ".", "?"), s.de  # ... and the clause really ends there
        assert list(c.nonfinite) == list(range(c.end - 1 - len(c.nonfinite), c.end - 1)), s.de
        if c.kind == "sub":
            assert toks[c.start].lower() in intros, s.de
        else:
            assert any(isinstance(a, RelAnn) and a.index == c.start for a in s.anns), s.de
        if c.start > 0:
            assert toks[c.start - 1] == ",", s.de  # German sets off every such clause by a comma
        counts[c.kind, c.tense] += 1
    assert min(counts.values()) > 50 and len(counts) == 4


def test_uncontracted_preposition_article_pairs_never_appear(samples):
    bad = re.compile(r"\b(in dem|in das|an dem|zu dem|zu der|von dem)\b", re.IGNORECASE)
    assert not [s.de for s in samples if bad.search(s.de)]


# --- golden sentences, German written by hand ------------------------------------------------------
GOLDEN = [
    (Sentence(Clause("see:tr", NP("dog", adjs=("big",)), obj=NP("man"))),
     "The big dog sees the man.", "Der große Hund sieht den Mann."),
    (Sentence(Clause("see:tr", NP("boy"), obj=NP("student", det="a"), time="today", front="time")),
     "Today the boy sees a student.", "Heute sieht der Junge einen Studenten."),
    (Sentence(Clause("help:dat", NP("woman"), obj=NP("child", plural=True, adjs=("small",)))),
     "The woman helps the small children.", "Die Frau hilft den kleinen Kindern."),
    (Sentence(Clause("give:ditr", NP("father", det="my"), iobj=NP("girl", det="a"),
                     obj=NP("apple", det="a", adjs=("red",)))),
     "My father gives a girl a red apple.", "Mein Vater gibt einem Mädchen einen roten Apfel."),
    (Sentence(Clause("call:tr", NP("mother"), obj=NP("doctor"), tense="past")),
     "The mother called the doctor.", "Die Mutter hat den Arzt angerufen."),
    (Sentence(Clause("go:motion", NP("child"), pp=PP("into", NP("house")), tense="past")),
     "The child went into the house.", "Das Kind ist ins Haus gegangen."),
    (Sentence(Clause("sleep:intr", NP("man")),
              sub=("because", Clause("call:tr", NP("woman"), obj=NP("dog", det="her")))),
     "The man sleeps because the woman calls her dog.", "Der Mann schläft, weil die Frau ihren Hund anruft."),
    (Sentence(Clause("sleep:intr", NP("child"), neg=True), sub=("because", Clause("bark:intr", NP("dog"))),
              sub_first=True),
     "Because the dog barks, the child does not sleep.", "Weil der Hund bellt, schläft das Kind nicht."),
    (Sentence(Clause("laugh:intr", NP("man", plural=True, rel=Clause("help:dat", NP("child"), gap="obj")))),
     "The men whom the child helps laugh.", "Die Männer, denen das Kind hilft, lachen."),
    (Sentence(Clause("see:tr", NP("I", det=""), obj=NP("cat", rel=Clause("drink:tr", obj=NP("milk", det=""),
                                                                            gap="subj")), tense="past")),
     "I saw the cat that drinks milk.", "Ich habe die Katze gesehen, die Milch trinkt."),
    (Sentence(Clause("eat:tr", NP("we", det=""), obj=NP("bread", det=""), neg=True)),
     "We do not eat bread.", "Wir essen kein Brot."),
    (Sentence(Clause("eat:tr", NP("boy"), obj=NP("sausage", det="a"), neg=True)),
     "The boy does not eat a sausage.", "Der Junge isst keine Wurst."),
    (Sentence(Clause("read:tr", NP("teacher"), obj=NP("newspaper")), question=True),
     "Does the teacher read the newspaper?", "Liest der Lehrer die Zeitung?"),
    (Sentence(Clause("say:dass", NP("she", det=""),
                     comp=Clause("come:motion", NP("guest", plural=True), pp=PP("from", NP("station")),
                                 tense="past"))),
     "She says that the guests came from the station.", "Sie sagt, dass die Gäste vom Bahnhof gekommen sind."),
    (Sentence(Clause("ask:ob", NP("boy", det="this"),
                     comp=Clause("be:cop", NP("soup"), pred="hot", very="too", tense="past"))),
     "This boy asks whether the soup was too hot.", "Dieser Junge fragt, ob die Suppe zu heiß war."),
    (Sentence(Clause("be:cop", NP("I", det=""), pred="tired"),
              coord=("so", Clause("go:motion", NP("I", det=""), pp=PP("to", NP("bed"))))),
     "I am tired, so I go to the bed.", "Ich bin müde, deshalb gehe ich zum Bett."),
    (Sentence(Clause("play:intr", NP("child", det="two", plural=True,
                                     pp=AttrPP("with", NP("dog", det="", plural=True, adjs=("small",)))))),
     "Two children with small dogs play.", "Zwei Kinder mit kleinen Hunden spielen."),
    (Sentence(Clause("read:tr", NP("woman"), obj=NP("book", det="a", adjs=("old",)),
                     pp=PP("in", NP("garden", det="our")), front="pp")),
     "In our garden the woman reads an old book.", "In unserem Garten liest die Frau ein altes Buch."),
    (Sentence(Clause("wait:prep:for", NP("man", plural=True), obj=NP("bus"), neg=True, tense="past")),
     "The men did not wait for the bus.", "Die Männer haben nicht auf den Bus gewartet."),
    (Sentence(Clause("cry:intr", NP("child", det="a", adjs=("small",)), freq="often")),
     "A small child often cries.", "Ein kleines Kind weint oft."),
    (Sentence(Clause("drink:tr", NP("horse", plural=True, det=""), obj=NP("water", det="", adjs=("cold",)))),
     "Horses drink cold water.", "Pferde trinken kaltes Wasser."),
    (Sentence(Clause("live:intr", NP("neighbour", det="our"), pp=PP("next to", NP("baker")))),
     "Our neighbour lives next to the baker.", "Unser Nachbar wohnt neben dem Bäcker."),
    (Sentence(Clause("wake up:intr", NP("baby"), time="yesterday", tense="past"),
              coord=("and", Clause("listen to:dat", NP("he", det=""), obj=NP("woman", det="every")))),
     "The baby woke up yesterday and he listens to every woman.",
     "Das Baby ist gestern aufgewacht und er hört jeder Frau zu."),
    (Sentence(Clause("tell:ditr", NP("grandmother"), iobj=NP("child", plural=True, det="her"),
                     obj=NP("story", det="a", adjs=("long",))), question=True),
     "Does the grandmother tell her children a long story?",
     "Erzählt die Großmutter ihren Kindern eine lange Geschichte?"),
]


@pytest.mark.parametrize("sentence,en,de", GOLDEN, ids=[g[1] for g in GOLDEN])
def test_golden_sentences(sentence, en, de):
    assert realize(sentence) == (en, de)


def test_contradictory_derivation_is_refused():
    fronted = Clause("sleep:intr", NP("man"), time="today", front="time")
    with pytest.raises(ValueError, match="prefield"):
        realize(Sentence(fronted, sub=("because", Clause("bark:intr", NP("dog"))), sub_first=True))


# --- dictionary baseline ----------------------------------------------------------------------------
def test_dictionary_baseline_translates_word_by_word():
    assert dictionary_baseline("The man sees the dog.") == "Der Mann sieht der Hund."
    assert dictionary_baseline("The girl picks up a child in front of the school.") == \
        "Der Mädchen holt ab ein Kind vor der Schule."
    assert dictionary_baseline("In the morning I do not drink water.") == "Am Morgen ich nicht trinken Wasser."


def test_dictionary_baseline_bleu_is_mediocre(corpus):
    bleu = score_baseline(corpus["test"])
    assert 5.0 <= bleu.score <= 25.0, bleu
    assert score_baseline([(en, de) for en, de in corpus["test"][:50]]).score < 40
