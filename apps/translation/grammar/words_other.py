"""Adjectives, adverbs, prepositions and function words of the synthetic grammar (data only).

Adjectives: ``english  German[/attributive-stem]  kind  classes`` — kind ``Q`` (quality, size,
age, mood) or ``C`` (colour): two adjectives in one phrase come in the order Q C in both
languages ("the big black dog" → "der große schwarze Hund"). The attributive stem is given
where it differs from the predicative form (``teuer`` → ``teur-e``). Classes as in the noun table.
"""

ADJECTIVES = """
big          groß                Q  PATFBSEVX
small        klein               Q  PATFBSEVX
old          alt                 Q  PATBSEV
young        jung                Q  PA
new          neu                 Q  TRBSV
long         lang                Q  TRSEVX
short        kurz                Q  TRSEVX
beautiful    schön               Q  PATBSEV
ugly         hässlich            Q  PATBSV
good         gut                 Q  PATRFDXV
bad          schlecht            Q  TRFDXV
nice         nett                Q  P
friendly     freundlich          Q  PA
happy        glücklich           Q  PA
sad          traurig             Q  PAXR
tired        müde                Q  PA
hungry       hungrig             Q  PA
thirsty      durstig             Q  PA
angry        wütend              Q  PA
clever       klug                Q  PA
stupid       dumm                Q  PAX
funny        lustig              Q  PAXR
quiet        ruhig               Q  PAB
strong       stark               Q  PAD
weak         schwach             Q  PAD
rich         reich               Q  P
poor         arm                 Q  PA
famous       berühmt             Q  PBR
lazy         faul                Q  PA
brave        mutig               Q  PA
shy          schüchtern          Q  PA
polite       höflich             Q  P
strange      seltsam             Q  PATBXR
expensive    teuer/teur          Q  TVFDB
cheap        billig              Q  TVFD
heavy        schwer              Q  TVS
dirty        schmutzig           Q  PATVBS
clean        sauber              Q  PATVBSD
empty        leer                Q  TB
full         voll                Q  TB
warm         warm                Q  FDBS
cold         kalt                Q  FDBSE
hot          heiß                Q  FD
fresh        frisch              Q  FD
sweet        süß                 Q  FDA
sour         sauer/saur          Q  FD
delicious    lecker              Q  F
dark         dunkel/dunkl        Q  TBSE
bright       hell                Q  TB
broken       kaputt              Q  TV
wet          nass                Q  PATS
dry          trocken             Q  TFS
soft         weich               Q  TFS
round        rund                Q  TS
interesting  interessant         Q  PRXB
boring       langweilig          Q  PRXB
difficult    schwierig           Q  X
easy         einfach             Q  X
important    wichtig             Q  PRXT
dangerous    gefährlich          Q  AXBE
wild         wild                Q  A
fast         schnell             Q  AV
slow         langsam             Q  AV
sick         krank               Q  PA
healthy      gesund              Q  PAF
huge         riesig              Q  ATBSEV
tiny         winzig              Q  ATFBV
red          rot                 C  TFBV
blue         blau                C  TBVS
green        grün                C  TFBVSA
yellow       gelb                C  TFBV
black        schwarz             C  ATBV
white        weiß                C  ATBVD
brown        braun               C  ATBVS
grey         grau                C  ATBV
"""

# Adverbs of frequency sit before the English main verb (after an auxiliary) and at the start
# of the German middle field.
FREQ_ADVERBS = """
always    immer
often     oft
sometimes manchmal
rarely    selten
usually   meistens
also      auch
still     noch
"""

# Time adverbials: sentence-final or fronted in English; tense: any, present (p) or past (f).
TIME_ADVERBS = """
today            heute             any
tomorrow         morgen            p
now              jetzt             p
soon             bald              p
later            später            p
yesterday        gestern           f
in_the_morning   am_Morgen         any
in_the_evening   am_Abend          any
at_night         in_der_Nacht      any
every_day        jeden_Tag         p
this_morning     heute_Morgen      any
last_week        letzte_Woche      f
last_year        letztes_Jahr      f
next_week        nächste_Woche     p
on_Monday        am_Montag         any
on_Tuesday       am_Dienstag       any
on_Wednesday     am_Mittwoch       any
on_Thursday      am_Donnerstag     any
on_Friday        am_Freitag        any
on_Saturday      am_Samstag        any
on_Sunday        am_Sonntag        any
"""

MANNER_ADVERBS = """
quickly    schnell
slowly     langsam
quietly    leise
loudly     laut
carefully  vorsichtig
happily    fröhlich
well       gut
badly      schlecht
together   zusammen
alone      allein
"""

# English preposition -> (German preposition, case). Locatives take the dative, directionals
# the accusative except where the preposition fixes the dative (zu, aus, von).
LOCATIVE_PREPS = {
    "i": ("in", "in", "dat"),
    "o": ("on", "auf", "dat"),
    "u": ("under", "unter", "dat"),
    "b": ("behind", "hinter", "dat"),
    "f": ("in front of", "vor", "dat"),
    "n": ("next to", "neben", "dat"),
    "a": ("at", "an", "dat"),
}
DIRECTIONAL_PREPS = {
    "I": ("into", "in", "acc"),
    "O": ("onto", "auf", "acc"),
    "T": ("to", "zu", "dat"),
    "X": ("out of", "aus", "dat"),
    "F": ("from", "von", "dat"),
    "H": ("through", "durch", "acc"),
    "C": ("across", "über", "acc"),
    "R": ("around", "um", "acc"),
}
# Prepositional phrases inside a noun phrase ("the man with the hat").
ATTRIBUTIVE_PREPS = {
    "with": ("mit", "dat"),
    "from": ("aus", "dat"),
    "without": ("ohne", "acc"),
}
# Benefactive adjunct ("cooks soup for the child").
BENEFACTIVE_PREP = ("for", "für", "acc")

# Preposition + definite article contractions (standard, obligatory in neutral prose).
CONTRACTIONS = {
    ("in", "dem"): "im",
    ("in", "das"): "ins",
    ("an", "dem"): "am",
    ("an", "das"): "ans",
    ("zu", "dem"): "zum",
    ("zu", "der"): "zur",
    ("von", "dem"): "vom",
    ("bei", "dem"): "beim",
}

# Subordinating conjunctions for adverbial clauses (verb-final in German).
SUBORDINATORS = {
    "because": "weil",
    "although": "obwohl",
    "if": "wenn",
    "when": "wenn",
    "while": "während",
    "before": "bevor",
}
# Coordinators: (German, comma before it, inverts the second clause).
COORDINATORS = {
    "and": ("und", False, False),
    "but": ("aber", True, False),
    "so": ("deshalb", True, True),
}

# Determiners: English -> (kind, German stem). Kinds: def / dem / every are der-words (weak
# adjective after them), indef / poss / kein are ein-words (mixed singular, weak plural),
# quant / num / none leave the adjective strong.
DETERMINERS = {
    "the": ("def", "d"),
    "this": ("dem", "dies"),
    "these": ("dem", "dies"),
    "every": ("every", "jed"),
    "a": ("indef", "ein"),
    "my": ("poss", "mein"),
    "his": ("poss", "sein"),
    "her": ("poss", "ihr"),
    "our": ("poss", "unser"),
    "their": ("poss", "ihr"),
    "some": ("quant", "einig"),
    "many": ("quant", "viel"),
    "two": ("num", "zwei"),
    "three": ("num", "drei"),
    "four": ("num", "vier"),
    "five": ("num", "fünf"),
    "": ("none", ""),
}

# Subject pronouns: English -> (German, person, number). "you" is left out on purpose: English
# does not say whether it is du, ihr or Sie, and the corpus must map each sentence one way.
PRONOUNS = {
    "I": ("ich", 1, "sg"),
    "he": ("er", 3, "sg"),
    "she": ("sie", 3, "sg"),
    "we": ("wir", 1, "pl"),
    "they": ("sie", 3, "pl"),
}

INTENSIFIERS = {"very": "sehr", "too": "zu"}
