"""The bilingual lexicon: typed entries parsed from the word tables, plus English inflection.

The tables (``words_*.py``) are plain text so a linguist can read and extend them; this module
turns them into frozen dataclasses once, checks them (unique keys, known classes), and offers
:class:`Lexicon` with the look-ups the generator and the dictionary baseline need. Everything is
kept in table order (lists and dicts, never sets) so that sampling is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

from apps.translation.grammar import words_nouns, words_other, words_verbs

NOUN_CLASSES = "PATRFDBSEVXM"
_DEFAULT_LOC = {"P": "bn", "A": "bn", "B": "ibfn", "V": "i"}
_DEFAULT_DIR = {"P": "TF", "A": "T", "B": "ITXFHR", "V": "IX"}


@dataclass(frozen=True)
class Noun:
    """A noun: English singular/plural, German gender, singular/plural, semantic classes."""

    key: str  # English singular, the lexicon key
    en_pl: str
    gender: str  # "m" | "f" | "n"
    de_sg: str
    de_pl: str | None  # None for mass nouns without a plural
    classes: str
    weak: str | None = None  # n-declension accusative/dative singular ("Jungen")
    loc: str = ""  # locative preposition letters it takes
    dir: str = ""  # directional preposition letters it takes

    @property
    def mass(self) -> bool:
        return "M" in self.classes

    @property
    def person(self) -> bool:
        return "P" in self.classes


@dataclass(frozen=True)
class Verb:
    """A verb in one frame (see ``words_verbs``); ``key`` is unique, ``en`` may repeat."""

    key: str
    frame: str  # intr tr dat ditr prep motion dass ob cop
    en: str  # English base form, spaces for particles ("pick up")
    en_3sg: str
    en_past: str  # simple past; English past maps to the German perfect (war for sein)
    de_inf: str  # infinitive without the separable prefix ("rufen")
    de_prefix: str  # separable prefix ("an") or ""
    de_3sg: str
    de_1sg: str
    de_part: str
    aux: str  # "haben" | "sein"
    subj: tuple[str, ...]  # admissible subject noun keys
    obj: tuple[str, ...] = ()  # admissible (direct) object noun keys
    iobj: tuple[str, ...] = ()  # admissible indirect objects (ditr)
    prep: tuple[str, str, str] | None = None  # (English, German, case) for frame "prep"
    dirs: str = ""  # directional kinds for frame "motion"
    flags: str = ""  # m manner, l locative, b benefactive

    @property
    def de_full_inf(self) -> str:
        return self.de_prefix + self.de_inf


@dataclass(frozen=True)
class Adjective:
    key: str
    de: str  # predicative form
    stem: str  # attributive stem
    kind: str  # "Q" or "C"
    classes: str


@dataclass(frozen=True)
class Adverb:
    key: str  # English, spaces allowed
    de: str  # German, spaces allowed
    kind: str  # "freq" | "time" | "manner"
    tense: str = "any"  # time adverbials: "any" | "present" | "past"


def english_plural(word: str) -> str:
    """Regular English plural spelling (irregular ones are listed in the noun table)."""
    if word.endswith(("s", "sh", "ch", "x", "z")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def english_3sg(base: str) -> str:
    """Third person singular present: inflect the first word of a particle verb."""
    head, _, rest = base.partition(" ")
    if head.endswith(("s", "sh", "ch", "x", "z", "o")):
        head += "es"
    elif head.endswith("y") and head[-2] not in "aeiou":
        head = head[:-1] + "ies"
    else:
        head += "s"
    return f"{head} {rest}".strip()


def indefinite_article(next_word: str) -> str:
    """``a`` or ``an`` by the sound of the next word (the lexicon avoids /ju:/ and silent h)."""
    return "an" if next_word[:1].lower() in "aeiou" else "a"


def _german_3sg(stem: str) -> str:
    # e-insertion keeps the ending audible: arbeitet, öffnet, zeichnet (but lernt, wohnt).
    if stem.endswith(("t", "d")):
        return stem + "et"
    if stem.endswith(("m", "n")) and len(stem) > 2:
        before = stem[-2]
        lengthening_h = before == "h" and stem[-3] in "aeiouäöü"  # wohnt, not wohnet
        if before not in "aeiouäöülrmn" and not lengthening_h:
            return stem + "et"
    return stem + "t"


def german_present_regular(inf: str) -> tuple[str, str]:
    """(1sg, 3sg) of a regular German verb: lächeln → lächle/lächelt, warten → warte/wartet."""
    if inf.endswith("eln"):
        stem = inf[:-1]  # lächel
        return stem[:-2] + "le", stem + "t"
    if inf.endswith("ern"):
        stem = inf[:-1]  # kletter
        return stem + "e", stem + "t"
    stem = inf[:-2]
    return stem + "e", _german_3sg(stem)


def _classes_or_keys(spec: str, nouns: list[Noun]) -> tuple[str, ...]:
    """Resolve ``PA`` / ``=dog,fox`` / ``R,=song`` to the admissible noun keys, in table order."""
    letters, keys = "", []
    in_keys = False  # after the first "=", every comma-separated item is a noun key
    for part in spec.split(","):
        part = part.strip()
        if part.startswith("="):
            in_keys, part = True, part[1:]
        if part == "-":
            continue
        if in_keys:
            keys.append(part.replace("_", " "))
        else:
            letters += part
    bad = [c for c in letters if c not in NOUN_CLASSES]
    if bad:
        raise ValueError(f"unknown noun class {bad} in {spec!r}")
    known = {n.key for n in nouns}
    missing = [k for k in keys if k not in known]
    if missing:
        raise ValueError(f"unknown noun {missing} in {spec!r}")
    return tuple(n.key for n in nouns if n.key in keys or any(c in n.classes for c in letters))


def _parse_nouns(text: str) -> list[Noun]:
    out = []
    for line in text.strip().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        gender, en, de, classes, *opts = line.split()
        en_sg, _, en_pl = en.partition("/")
        de_sg, _, de_pl = de.partition("/")
        options = dict(o.split("=", 1) for o in opts)
        primary = classes[0]
        out.append(
            Noun(
                key=en_sg.replace("_", " "),
                en_pl=(en_pl or english_plural(en_sg)).replace("_", " "),
                gender=gender,
                de_sg=de_sg,
                de_pl=None if de_pl in ("", "-") else de_pl,
                classes=classes,
                weak=options.get("weak"),
                loc=options.get("loc", _DEFAULT_LOC.get(primary, "")),
                dir=options.get("dir", _DEFAULT_DIR.get(primary, "")),
            )
        )
    return out


def _parse_verbs(text: str, nouns: list[Noun]) -> list[Verb]:
    out: list[Verb] = []
    for line in text.strip().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        head, german, subj, obj, opts = (c.strip() for c in line.split("|"))
        frame, en, en3, enp = head.split()
        de_inf, de3, de_part, aux = german.split()
        prefix, _, base = de_inf.rpartition("+")
        options = opts.split()
        flags = "".join(o for o in options if "=" not in o)
        kv = dict(o.split("=", 1) for o in options if "=" in o)
        prep = None
        if frame.startswith("prep:"):
            _, en_p, de_p, case = frame.split(":")
            frame, prep = "prep", (en_p, de_p, case)
        en = en.replace("_", " ")
        one, three = german_present_regular(base)
        iobj_spec, _, obj_spec = obj.rpartition(";") if ";" in obj else ("", "", obj)
        key = f"{en}:{frame}" + (f":{prep[0]}" if prep else "")
        out.append(
            Verb(
                key=key,
                frame=frame,
                en=en,
                en_3sg=english_3sg(en) if en3 == "-" else en3.replace("_", " "),
                en_past=enp.replace("_", " "),
                de_inf=base,
                de_prefix=prefix,
                de_3sg=three if de3 == "-" else de3,
                de_1sg=kv.get("1sg", one),
                de_part=de_part,
                aux={"h": "haben", "s": "sein"}[aux],
                subj=_classes_or_keys(subj, nouns),
                obj=_classes_or_keys(obj_spec, nouns) if obj_spec != "-" else (),
                iobj=_classes_or_keys(iobj_spec, nouns) if iobj_spec else (),
                prep=prep,
                dirs=kv.get("dir", ""),
                flags=flags,
            )
        )
    return out


def _parse_adjectives(text: str) -> list[Adjective]:
    out = []
    for line in text.strip().splitlines():
        en, de, kind, classes = line.split()
        pred, _, stem = de.partition("/")
        out.append(Adjective(en, pred, stem or pred, kind, classes))
    return out


def _parse_adverbs(text: str, kind: str) -> list[Adverb]:
    tenses = {"any": "any", "p": "present", "f": "past"}
    out = []
    for line in text.strip().splitlines():
        en, de, *rest = line.split()
        tense = tenses[rest[0]] if rest else "any"
        out.append(Adverb(en.replace("_", " "), de.replace("_", " "), kind, tense))
    return out


@dataclass
class Lexicon:
    """All entries of the grammar, keyed by their English lemma (verbs by ``lemma:frame``)."""

    nouns: dict[str, Noun]
    verbs: dict[str, Verb]
    adjectives: dict[str, Adjective]
    adverbs: dict[str, Adverb]
    extra: dict[str, object] = field(default_factory=dict)

    def size(self) -> int:
        """Number of distinct lexical entries (verbs counted once per German lemma)."""
        verbs = {(v.en, v.de_full_inf) for v in self.verbs.values()}
        return len(self.nouns) + len(verbs) + len(self.adjectives) + len(self.adverbs)

    def subset(
        self, nouns: list[str], verbs: list[str], adjectives: list[str], adverbs: list[str] | None = None
    ) -> "Lexicon":
        """A smaller lexicon (tests use it to force collisions and expose ambiguity)."""
        keep = {k: self.nouns[k] for k in nouns}
        vs = {}
        for k in verbs:
            v = self.verbs[k]
            vs[k] = replace(
                v,
                subj=tuple(n for n in v.subj if n in keep),
                obj=tuple(n for n in v.obj if n in keep),
                iobj=tuple(n for n in v.iobj if n in keep),
            )
        advs = dict(self.adverbs) if adverbs is None else {k: self.adverbs[k] for k in adverbs}
        return Lexicon(keep, vs, {k: self.adjectives[k] for k in adjectives}, advs)


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The full lexicon, parsed and checked once per process."""
    nouns = _parse_nouns(words_nouns.NOUNS)
    verbs = _parse_verbs(words_verbs.VERBS, nouns)
    adjs = _parse_adjectives(words_other.ADJECTIVES)
    advs = (
        _parse_adverbs(words_other.FREQ_ADVERBS, "freq")
        + _parse_adverbs(words_other.TIME_ADVERBS, "time")
        + _parse_adverbs(words_other.MANNER_ADVERBS, "manner")
    )
    for name, items in (("noun", nouns), ("verb", verbs), ("adjective", adjs), ("adverb", advs)):
        keys = [i.key for i in items]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"duplicate {name} keys: {dup}")
    return Lexicon(
        nouns={n.key: n for n in nouns},
        verbs={v.key: v for v in verbs},
        adjectives={a.key: a for a in adjs},
        adverbs={a.key: a for a in advs},
    )
