"""Realise a derivation as an English and a German sentence (the synchronous grammar's rules).

German clauses follow the topological field model: prefield, left bracket (finite verb),
middle field, right bracket (participle / separable prefix; in verb-final clauses the whole verb
cluster), and a final field for extraposed relative and complement clauses:

- main clause (V2): one constituent in the prefield (subject, fronted adverbial or PP, a fronted
  adverbial clause, or ``deshalb``), then the finite verb;
- question (V1): the finite verb first;
- subordinate and relative clauses: the complementizer or relative pronoun, then the middle
  field, then the verb cluster (``angerufen hat``, ``anruft``).

Middle-field order: subject, time, frequency, indirect object, object, manner, ``nicht``,
prepositional object, predicative, adjunct PP. Negation merges into an indefinite or bare
object as ``kein``. English uses do-support for negation and questions.
"""

from __future__ import annotations

from typing import Callable

from apps.translation.grammar import german as de
from apps.translation.grammar.lexicon import Lexicon, indefinite_article
from apps.translation.grammar.spec import (
    NP,
    PP,
    Clause,
    ClauseAnn,
    NPAnn,
    RelAnn,
    Sample,
    Sentence,
)
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

# English clause-level preposition -> (German preposition, case, kind).
CLAUSE_PREPS: dict[str, tuple[str, str, str]] = {
    **{en: (g, case, "loc") for en, g, case in LOCATIVE_PREPS.values()},
    **{en: (g, case, "dir") for en, g, case in DIRECTIONAL_PREPS.values()},
    BENEFACTIVE_PREP[0]: (BENEFACTIVE_PREP[1], BENEFACTIVE_PREP[2], "ben"),
}


class _Builder:
    """German tokens in surface order plus the annotations that point into them."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.anns: list[object] = []

    @property
    def pos(self) -> int:
        return len(self.tokens)

    def add(self, *words: str) -> None:
        for w in words:
            if " " in w:
                self.tokens.extend(w.split())
            else:
                self.tokens.append(w)


def detokenize(tokens: list[str]) -> str:
    """Join tokens, attaching punctuation, and capitalise the first letter."""
    text = " ".join(tokens)
    for p in (",", ".", "?"):
        text = text.replace(" " + p, p)
    return text[:1].upper() + text[1:]


class Realizer:
    """Turns :class:`Sentence` derivations into (English, German, annotations)."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lex = lexicon

    # --- shared helpers -------------------------------------------------------------------
    def person_number(self, np: NP) -> tuple[int, str]:
        if np.noun in PRONOUNS:
            _, person, number = PRONOUNS[np.noun]
            return person, number
        return 3, "pl" if np.plural else "sg"

    # --- English --------------------------------------------------------------------------
    def en_np(self, np: NP) -> list[str]:
        if np.noun in PRONOUNS:
            return [np.noun]
        noun = self.lex.nouns[np.noun]
        body = list(np.adjs) + (noun.en_pl if np.plural else noun.key).split()
        words = [indefinite_article(body[0])] if np.det == "a" else ([np.det] if np.det else [])
        words += body
        if np.pp is not None:
            words += [np.pp.prep] + self.en_np(np.pp.np)
        return words

    def _en_relative(self, antecedent: NP, rel: Clause) -> list[str]:
        human = self.lex.nouns[antecedent.noun].person
        pron = ("who" if rel.gap == "subj" else "whom") if human else "that"
        return [pron] + self.en_clause(rel, "rel", antecedent=antecedent)

    def _en_pp(self, pp: PP) -> list[str]:
        return pp.prep.split() + self.en_np(pp.np)

    def en_clause(self, c: Clause, kind: str, antecedent: NP | None = None) -> list[str]:
        v = self.lex.verbs[c.verb]
        person, number = self.person_number(antecedent if c.gap == "subj" else c.subj)
        third_sg = person == 3 and number == "sg"
        cop = v.frame == "cop"
        aux: str | None
        past = c.tense == "past"
        if cop and past:
            aux, main = ("were" if number == "pl" else "was"), ""
        elif cop:
            aux, main = ("am" if person == 1 and number == "sg" else "is" if third_sg else "are"), ""
        elif c.neg or kind == "question":  # do-support
            aux, main = ("did" if past else "does" if third_sg else "do"), v.en
        else:
            aux, main = None, (v.en_past if past else v.en_3sg if third_sg else v.en)

        if c.gap == "subj":
            subj: list[str] = []
        else:
            assert c.subj is not None
            subj = self.en_np(c.subj)
            if c.subj.rel is not None:
                subj += self._en_relative(c.subj, c.subj.rel)
        freq = [self.lex.adverbs[c.freq].key] if c.freq else []
        negation = ["not"] if c.neg else []
        if kind == "question":
            group = [aux] + subj + freq + main.split()
        elif aux is None:
            group = subj + freq + main.split()
        else:
            group = subj + [aux] + freq + negation + main.split()

        rest: list[str] = []
        if c.iobj is not None:
            rest += self.en_np(c.iobj)
        if c.obj is not None and c.gap != "obj":
            if v.frame == "prep":
                rest += [v.prep[0]]
            rest += self.en_np(c.obj)
            if c.obj.rel is not None:
                rest += self._en_relative(c.obj, c.obj.rel)
        if c.manner:
            rest.append(c.manner)
        if c.pred:
            rest += ([c.very] if c.very else []) + [c.pred]
        if c.pp is not None and c.front != "pp":
            rest += self._en_pp(c.pp)
        if c.time and c.front != "time":
            rest += c.time.split()
        if c.comp is not None:
            rest += ["that" if v.frame == "dass" else "whether"] + self.en_clause(c.comp, "sub")

        front: list[str] = []
        if c.front == "time":
            front = c.time.split()
        elif c.front == "pp":
            front = self._en_pp(c.pp)
        return front + group + rest

    # --- German ---------------------------------------------------------------------------
    def de_np(self, b: _Builder, np: NP, case: str, prep: str | None = None, kein: bool = False) -> None:
        if np.noun in PRONOUNS:
            form, person, number = PRONOUNS[np.noun]
            if prep:
                b.add(prep)
            b.anns.append(NPAnn(b.pos, b.pos, "pron", "", "", number, case, form, (), prep))
            b.add(form)
            return
        noun = self.lex.nouns[np.noun]
        number = "pl" if np.plural else "sg"
        kind, stem = DETERMINERS[np.det]
        if kein and kind in ("indef", "none"):
            kind, stem = "kein", "kein"
        article = de.determiner(kind, stem, noun.gender, number, case)
        fused = False
        if prep:
            merged = de.contract(prep, article) if kind == "def" else None
            if merged:
                fused = True
                start = b.pos
                b.add(merged)
            else:
                b.add(prep)
        if not fused:
            start = b.pos
            if article:
                b.add(article)
        for a in np.adjs:
            b.add(de.adjective(self.lex.adjectives[a].stem, kind, noun.gender, number, case))
        head = b.pos
        b.add(de.noun_form(noun, number, case))
        b.anns.append(
            NPAnn(start, head, kind, stem, noun.gender, number, case, noun.key, np.adjs, prep, fused)
        )
        if np.pp is not None:
            g_prep, g_case = ATTRIBUTIVE_PREPS[np.pp.prep]
            self.de_np(b, np.pp.np, g_case, prep=g_prep)

    def _de_pp(self, b: _Builder, pp: PP) -> None:
        g_prep, case, _ = CLAUSE_PREPS[pp.prep]
        self.de_np(b, pp.np, case, prep=g_prep)

    def _de_relative(self, b: _Builder, antecedent: NP, rel: Clause) -> None:
        self.de_clause(b, rel, "rel", antecedent=antecedent)

    def de_clause(
        self,
        b: _Builder,
        c: Clause,
        kind: str,
        *,
        antecedent: NP | None = None,
        intro: str | None = None,
        prefield: Callable[[], None] | None = None,
    ) -> None:
        """Append clause ``c`` as a ``main`` / ``question`` / ``sub`` / ``rel`` clause."""
        v = self.lex.verbs[c.verb]
        if prefield is not None and c.front is not None:
            raise ValueError("the prefield is taken: a clause after a fronted clause cannot front more")
        person, number = self.person_number(antecedent if c.gap == "subj" else c.subj)
        kein = c.neg and c.obj is not None and v.frame in ("tr", "ditr", "dat") and c.obj.det in ("a", "")
        start = b.pos

        def subject() -> None:
            assert c.subj is not None
            self.de_np(b, c.subj, "nom")
            if c.subj.rel is not None:
                if kind != "main" or prefield is not None or c.front is not None:
                    raise ValueError("a subject relative clause is generated only in the prefield")
                b.add(",")
                self._de_relative(b, c.subj, c.subj.rel)
                b.add(",")  # closes the relative clause before the finite verb

        def time() -> None:
            b.add(self.lex.adverbs[c.time].de)

        def pp() -> None:
            self._de_pp(b, c.pp)

        obj_case = {"tr": "acc", "ditr": "acc", "dat": "dat"}.get(v.frame)
        middle: list[Callable[[], None]] = []
        if c.gap != "subj" and not (kind == "main" and prefield is None and c.front is None):
            middle.append(subject)
        if c.time and c.front != "time":
            middle.append(time)
        if c.freq:
            middle.append(lambda: b.add(self.lex.adverbs[c.freq].de))
        if c.iobj is not None:
            middle.append(lambda: self.de_np(b, c.iobj, "dat"))
        if c.obj is not None and obj_case and c.gap != "obj":
            middle.append(lambda: self.de_np(b, c.obj, obj_case, kein=kein))
        if c.manner:
            middle.append(lambda: b.add(self.lex.adverbs[c.manner].de))
        if c.neg and not kein:
            middle.append(lambda: b.add("nicht"))
        if c.obj is not None and v.frame == "prep" and c.gap != "obj":
            middle.append(lambda: self.de_np(b, c.obj, v.prep[2], prep=v.prep[1]))
        if c.pred:
            middle.append(
                lambda: b.add(*([INTENSIFIERS[c.very]] if c.very else []), self.lex.adjectives[c.pred].de)
            )
        if c.pp is not None and c.front != "pp":
            middle.append(pp)

        if c.tense == "past" and v.frame == "cop":  # sein prefers the Präteritum: war
            fin, nonfin = ("waren" if number == "pl" else "war"), []
        elif c.tense == "past":  # English simple past = German (spoken) perfect
            fin, nonfin = de.auxiliary(v.aux, person, number), [v.de_part]
        else:
            fin, nonfin = de.finite(v, person, number), ([v.de_prefix] if v.de_prefix else [])

        pf: tuple[int, int] | None = None
        nonfin_idx: list[int] = []
        if kind in ("main", "question"):
            if kind == "main":
                first = prefield or {"time": time, "pp": pp}.get(c.front or "", subject)
                first()
                pf = (start, b.pos)
            finite_idx = b.pos
            b.add(fin)
            for part in middle:
                part()
            for w in nonfin:
                nonfin_idx.append(b.pos)
                b.add(w)
            end = b.pos
        else:
            if kind == "sub":
                b.add(intro)
            else:  # relative pronoun: gender/number of the antecedent, case of its role
                assert antecedent is not None
                a_noun = self.lex.nouns[antecedent.noun]
                a_num = "pl" if antecedent.plural else "sg"
                case = "nom" if c.gap == "subj" else obj_case
                b.anns.append(RelAnn(b.pos, a_noun.gender, a_num, case))
                b.add(de.RELATIVE_PRONOUNS[case][de.gnum(a_noun.gender, a_num)])
            for part in middle:
                part()
            if nonfin and c.tense == "past":
                nonfin_idx.append(b.pos)
                b.add(v.de_part)
                finite_idx = b.pos
                b.add(fin)
            elif c.tense == "past":
                finite_idx = b.pos
                b.add(fin)
            else:
                finite_idx = b.pos
                b.add(v.de_prefix + fin)  # separable prefix fuses in final position
            end = b.pos
        b.anns.append(
            ClauseAnn(kind, start, end, finite_idx, tuple(nonfin_idx), v.key, person, number, c.tense, pf)
        )
        # Final field: extraposed relative clause of the object, complement clause.
        if c.obj is not None and c.obj.rel is not None:
            b.add(",")
            self._de_relative(b, c.obj, c.obj.rel)
        if c.comp is not None:
            b.add(",")
            self.de_clause(b, c.comp, "sub", intro="dass" if v.frame == "dass" else "ob")

    # --- sentences ------------------------------------------------------------------------
    def realize(self, s: Sentence) -> Sample:
        """The English and German sentence of derivation ``s``, with German annotations."""
        b = _Builder()
        main = s.main
        if s.question:
            en = self.en_clause(main, "question")
            self.de_clause(b, main, "question")
        elif s.sub is not None and s.sub_first:
            conj, sc = s.sub

            def fronted() -> None:
                self.de_clause(b, sc, "sub", intro=SUBORDINATORS[conj])
                b.add(",")

            en = [conj] + self.en_clause(sc, "sub") + [","] + self.en_clause(main, "main")
            self.de_clause(b, main, "main", prefield=fronted)
        else:
            en = self.en_clause(main, "main")
            self.de_clause(b, main, "main")
            if s.sub is not None:
                conj, sc = s.sub
                en += [conj] + self.en_clause(sc, "sub")
                b.add(",")
                self.de_clause(b, sc, "sub", intro=SUBORDINATORS[conj])
            if s.coord is not None:
                conj, c2 = s.coord
                g_conj, comma, invert = COORDINATORS[conj]
                final_field = main.comp is not None or (main.obj is not None and main.obj.rel is not None)
                if comma or final_field:
                    b.add(",")
                en += ([","] if comma else []) + [conj] + self.en_clause(c2, "main")
                if invert:
                    self.de_clause(b, c2, "main", prefield=lambda: b.add(g_conj))
                else:
                    b.add(g_conj)
                    self.de_clause(b, c2, "main")
        end = "?" if s.question else "."
        en.append(end)
        b.add(end)
        tokens = list(b.tokens)
        tokens[0] = tokens[0][:1].upper() + tokens[0][1:]
        return Sample(detokenize(en), detokenize(tokens), tuple(tokens), tuple(b.anns), s)

