"""The verb table of the synthetic English→German grammar (data only; parsed by ``lexicon.py``).

One verb frame a line, five ``|``-separated columns::

    frame  english-base english-3sg english-past | German-infinitive 3sg participle aux
          | subject classes | object classes | options

- frame: ``intr``; ``tr`` (accusative object); ``dat`` (dative object); ``ditr`` (dative
  indirect + accusative direct object, object column ``iobj;obj``); ``prep:EN:DE:case``
  (prepositional object, e.g. ``wait for`` → ``warten auf`` + accusative); ``motion`` (a
  directional phrase, ``dir=`` lists the kinds); ``dass`` / ``ob`` (a complement clause);
  ``cop`` (the copula, predicative adjective or locative phrase).
- ``-`` in the 3sg columns means "by rule"; an underscore in English is a space (``pick_up``:
  the first word inflects, the rest follows it); ``an+rufen`` marks a separable prefix, whose
  3sg column gives the bare verb (``ruft``) and whose participle is written whole.
- aux: ``h`` haben, ``s`` sein. Classes as in the noun table, or ``=id,id`` for named nouns.
- options: ``m`` takes a manner adverb, ``l`` a locative adjunct (``L``: always has one), ``b`` a
  benefactive ``for`` phrase; ``1sg=Form`` for an irregular first person singular; ``dir=`` as above.
  The same English verb may appear in several frames (``know`` → ``wissen`` with a clause,
  ``kennen`` with an object): the frame decides the German verb, so the mapping stays a function.
"""

VERBS = """
# --- intransitive --------------------------------------------------------------------------
intr sleep - slept               | schlafen schläft geschlafen h    | PA | - | ml
intr laugh - laughed             | lachen - gelacht h               | P  | - | ml
intr work - worked               | arbeiten - gearbeitet h          | P  | - | ml
intr wait - waited               | warten - gewartet h              | PA | - | l
intr sing - sang                 | singen - gesungen h              | P  | - | mlb
intr dance - danced              | tanzen - getanzt h               | P  | - | ml
intr cry - cried                 | weinen - geweint h               | P  | - | l
intr smile - smiled              | lächeln - gelächelt h            | P  | - | m
intr play - played               | spielen - gespielt h             | PA | - | ml
intr cook - cooked               | kochen - gekocht h               | P  | - | mlb
intr bark - barked               | bellen - gebellt h               | =dog,fox | - | ml
intr sit - sat                   | sitzen - gesessen h              | PA | - | l
intr stand - stood               | stehen - gestanden h             | PA | - | l
intr live - lived                | wohnen - gewohnt h               | P  | - | L
intr read - read                 | lesen liest gelesen h            | P  | - | ml
intr write - wrote             | schreiben - geschrieben h        | P  | - | mlb
intr eat - ate                 | essen isst gegessen h            | PA | - | ml
intr learn - learned             | lernen - gelernt h               | P  | - | ml
intr swim - swam                 | schwimmen - geschwommen s        | PA | - | ml
intr whistle - whistled          | pfeifen - gepfiffen h            | P  | - | ml
intr shout - shouted             | schreien - geschrien h           | PA | - | l
intr listen - listened           | zu+hören hört zugehört h         | P  | - | m
intr wake_up - woke_up          | auf+wachen wacht aufgewacht s    | PA | - | m
intr fall_asleep - fell_asleep | ein+schlafen schläft eingeschlafen s | PA | - | ml
intr get_up - got_up             | auf+stehen steht aufgestanden s  | P  | - | m
intr come_back - came_back       | zurück+kommen kommt zurückgekommen s | PA | - |
intr arrive - arrived            | an+kommen kommt angekommen s     | PV | - | l
intr disappear - disappeared     | verschwinden - verschwunden s    | PAT | - | m
intr rest - rested               | rasten rastet gerastet h         | PA | - | l
# --- motion (directional phrase) --------------------------------------------------------------
motion go goes went              | gehen - gegangen s               | PA | - | dir=ITXHRO
motion come - came               | kommen - gekommen s              | PA | - | dir=ITXF
motion drive - drove            | fahren fährt gefahren s          | P  | - | dir=ITHCF
motion fly - flew               | fliegen - geflogen s             | =bird,bee,owl,parrot,butterfly,plane | - | dir=ITHO
motion run - ran                 | rennen - gerannt s               | PA | - | dir=ITXHCR
motion walk - walked             | laufen läuft gelaufen s          | PA | - | dir=ITXHCR
motion swim - swam               | schwimmen - geschwommen s        | PA | - | dir=TIC
motion jump - jumped             | springen - gesprungen s          | PA | - | dir=IOX
motion climb - climbed           | klettern - geklettert s          | PA | - | dir=OX
motion travel - travelled        | reisen - gereist s               | P  | - | dir=ITH
motion ride - rode             | reiten - geritten s              | P  | - | dir=THC
motion fall - fell             | fallen fällt gefallen s          | PAT | - | dir=IO
# --- transitive ------------------------------------------------------------------------------
tr see - saw                    | sehen sieht gesehen h            | PA | PATFBSEV | l
tr read - read                   | lesen liest gelesen h            | P  | R | ml
tr write - wrote               | schreiben - geschrieben h        | P  | R,=song | mlb
tr eat - ate                   | essen isst gegessen h            | PA | F | ml
tr drink - drank                 | trinken - getrunken h            | PA | D | ml
tr buy - bought                  | kaufen - gekauft h               | P  | TFDRV | lb
tr sell - sold                   | verkaufen - verkauft h           | P  | TFVA | l
tr find - found                  | finden - gefunden h              | PA | TRA | l
tr need - needed                 | brauchen - gebraucht h           | PA | TVFDR |
tr like - liked                  | mögen mag gemocht h              | PA | PAFD | 1sg=mag
tr love - loved                  | lieben - geliebt h               | PA | PAFD |
tr hold - held                   | halten hält gehalten h           | P  | TRA | ml
tr carry - carried               | tragen trägt getragen h          | PA | TRA | ml
tr take - took                  | nehmen nimmt genommen h          | P  | TRF |
tr visit - visited               | besuchen - besucht h             | P  | PB |
tr understand - understood       | verstehen - verstanden h         | P  | PXR |
tr forget - forgot            | vergessen vergisst vergessen h   | P  | TX |
tr paint - painted               | malen - gemalt h                 | P  | TABP | mlb
tr build - built                 | bauen - gebaut h                 | P  | =house,tent,bridge,castle,barn,stable,boat,wall | mlb
tr open - opened                 | öffnen - geöffnet h              | P  | =window,door,box,bottle,bag,book,letter,shop | m
tr close - closed                | schließen - geschlossen h        | P  | =window,door,box,bottle,bag,book,shop | m
tr wash - washed                 | waschen wäscht gewaschen h       | P  | TVAP | ml
tr clean - cleaned               | putzen - geputzt h               | P  | TVBS | ml
tr catch - caught                | fangen fängt gefangen h          | PA | A,=ball | ml
tr hear - heard                  | hören - gehört h                 | PA | PA,=song,music,bell,radio,story | l
tr meet - met                    | treffen trifft getroffen h       | P  | P | l
tr lose - lost                   | verlieren - verloren h           | P  | TR | l
tr repair - repaired             | reparieren - repariert h         | P  | TV | mlb
tr photograph - photographed     | fotografieren - fotografiert h   | P  | PABV | l
tr order - ordered               | bestellen - bestellt h           | P  | FD | lb
tr watch - watched               | beobachten - beobachtet h        | PA | PA | ml
tr feed - fed                    | füttern - gefüttert h            | P  | A | ml
tr draw - drew                  | zeichnen - gezeichnet h          | P  | TABP | mlb
tr greet - greeted               | grüßen - gegrüßt h               | P  | P | m
tr ask - asked                   | fragen - gefragt h               | P  | P |
tr know - knew                  | kennen - gekannt h               | PA | PAB |
tr have has had                  | haben hat gehabt h               | PA | TAVR,=idea,problem,question,plan |
tr hug - hugged                  | umarmen - umarmt h               | P  | PA |
tr cut - cut                     | schneiden - geschnitten h        | P  | =bread,cake,cheese,sausage,apple,pizza,meat | ml
tr bake - baked                  | backen - gebacken h              | P  | =bread,cake,pizza | lb
tr cook - cooked                 | kochen - gekocht h               | P  | =soup,rice,meat,egg,potato,tea,coffee | mlb
tr throw - threw            | werfen wirft geworfen h          | P  | =ball,stone,key | ml
tr push - pushed                 | schieben - geschoben h           | P  | =bicycle,car,box,bed,table | m
tr steal - stole                | stehlen stiehlt gestohlen h      | P  | TVR | l
tr sing - sang                   | singen - gesungen h              | P  | =song | mlb
tr look_for - looked_for         | suchen - gesucht h               | PA | TPAR | l
tr pick_up - picked_up           | ab+holen holt abgeholt h         | P  | P |
tr call - called                 | an+rufen ruft angerufen h        | P  | P |
tr invite - invited              | ein+laden lädt eingeladen h      | P  | P |
tr look_at - looked_at           | an+sehen sieht angesehen h       | PA | PATRBSEV | ml
tr tidy_up - tidied_up           | auf+räumen räumt aufgeräumt h    | P  | =room,kitchen,house,office,classroom,cellar,desk | m
tr switch_on - switched_on       | ein+schalten schaltet eingeschaltet h | P | =radio,lamp,computer,phone,camera |
tr switch_off - switched_off     | aus+schalten schaltet ausgeschaltet h | P | =radio,lamp,computer,phone,camera |
# --- dative object -------------------------------------------------------------------------
dat help - helped                | helfen hilft geholfen h          | PA | PA |
dat thank - thanked              | danken - gedankt h               | P  | P |
dat follow - followed            | folgen - gefolgt s               | PA | PAV |
dat answer - answered            | antworten - geantwortet h        | P  | P |
dat trust - trusted              | vertrauen - vertraut h           | PA | PA |
dat belong_to - belonged_to      | gehören - gehört h               | TAVRB | P |
dat congratulate - congratulated | gratulieren - gratuliert h       | P  | P |
dat listen_to - listened_to      | zu+hören hört zugehört h         | PA | P |
dat wave_to - waved_to           | zu+winken winkt zugewinkt h      | P  | P |
# --- ditransitive ----------------------------------------------------------------------------
ditr give gives gave            | geben gibt gegeben h             | P  | PA;TFDR |
ditr show - showed                | zeigen - gezeigt h               | P  | P;TRAB |
ditr send - sent                 | schicken - geschickt h           | P  | P;TR |
ditr bring - brought       | bringen - gebracht h             | P  | PA;TFDR |
ditr sell - sold                 | verkaufen - verkauft h           | P  | P;TVAF |
ditr tell - told              | erzählen - erzählt h             | P  | P;=story,joke |
ditr offer - offered             | an+bieten bietet angeboten h     | P  | P;FDT |
ditr lend - lent              | leihen - geliehen h              | P  | P;TVR |
ditr buy - bought                | kaufen - gekauft h               | P  | P;TF |
ditr write - wrote             | schreiben - geschrieben h        | P  | P;=letter |
ditr read - read                 | vor+lesen liest vorgelesen h     | P  | P;=story,book,letter |
# --- prepositional object --------------------------------------------------------------------
prep:for:auf:acc wait - waited             | warten - gewartet h     | PA | PAV |
prep:about:über:acc talk - talked          | sprechen spricht gesprochen h | P | PAXTBV |
prep:to:mit:dat talk - talked              | sprechen spricht gesprochen h | P | P |
prep:of:von:dat dream - dreamed            | träumen - geträumt h    | PA | PAXTBVFD |
prep:of:an:acc think - thought       | denken - gedacht h      | P  | PABX |
prep:at:über:acc laugh - laughed           | lachen - gelacht h      | P  | PA,=joke,story |
prep:for:um:acc ask - asked                | bitten - gebeten h      | P  | TFD |
# --- complement clauses --------------------------------------------------------------------
dass say says said               | sagen - gesagt h                 | P | - |
dass know - knew             | wissen weiß gewusst h            | P | - | 1sg=weiß
dass believe - believed          | glauben - geglaubt h             | P | - |
dass think - thought       | denken - gedacht h               | P | - |
dass hope - hoped                | hoffen - gehofft h               | P | - |
dass hear - heard                | hören - gehört h                 | P | - |
ob ask - asked                   | fragen - gefragt h               | P | - |
ob know - knew               | wissen weiß gewusst h            | P | - | 1sg=weiß
# --- copula ----------------------------------------------------------------------------------
cop be is was                   | sein ist gewesen s               | PATFDBSEVRX | - | 1sg=bin
"""
