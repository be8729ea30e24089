"""The noun table of the synthetic English→German grammar (data only; parsed by ``lexicon.py``).

One noun a line: ``gender  english[/plural]  German[/plural]  classes  [options]``.

- gender: ``m`` / ``f`` / ``n``; the English plural is given only where the spelling rule
  (``-s``, ``-es``, ``-ies``) does not produce it; German plurals are always spelled out, ``-`` for
  a mass noun that has none. An underscore in English stands for a space (``ice_cream``).
- classes (semantic, so verbs pick sensible arguments): P person, A animal, T portable thing,
  R readable (also a thing), F food, D drink, B building or area, S surface, E edge (``at``),
  V vehicle, X abstract, M mass noun (bare singular allowed, no ``a``, no plural).
- options: ``weak=Form`` for n-declension masculines (accusative/dative singular form);
  ``loc=`` / ``dir=`` override which locative / directional prepositions the noun takes
  (letters: i in, o on, u under, b behind, f in front of, n next to, a at | I into, O onto,
  T to, X out of, F from, H through, C across, R around).
"""

NOUNS = """
# --- people -------------------------------------------------------------------------------
m man/men               Mann/Männer                  P
f woman/women           Frau/Frauen                  P
n child/children        Kind/Kinder                  P
m boy                   Junge/Jungen                 P  weak=Jungen
n girl                  Mädchen/Mädchen              P
m teacher               Lehrer/Lehrer                P
m doctor                Arzt/Ärzte                   P
m student               Student/Studenten            P  weak=Studenten
m farmer                Bauer/Bauern                 P  weak=Bauern
m neighbour             Nachbar/Nachbarn             P  weak=Nachbarn
m friend                Freund/Freunde               P
m king                  König/Könige                 P
f queen                 Königin/Königinnen           P
m baker                 Bäcker/Bäcker                P
m driver                Fahrer/Fahrer                P
m soldier               Soldat/Soldaten              P  weak=Soldaten
m policeman/policemen   Polizist/Polizisten          P  weak=Polizisten
m artist                Künstler/Künstler            P
m singer                Sänger/Sänger                P
m painter               Maler/Maler                  P
m writer                Schriftsteller/Schriftsteller P
m waiter                Kellner/Kellner              P
m customer              Kunde/Kunden                 P  weak=Kunden
m guest                 Gast/Gäste                   P
m tourist               Tourist/Touristen            P  weak=Touristen
m colleague             Kollege/Kollegen             P  weak=Kollegen
m president             Präsident/Präsidenten        P  weak=Präsidenten
m grandfather           Großvater/Großväter          P
f grandmother           Großmutter/Großmütter        P
m father                Vater/Väter                  P
f mother                Mutter/Mütter                P
m brother               Bruder/Brüder                P
f sister                Schwester/Schwestern         P
m son                   Sohn/Söhne                   P
f daughter              Tochter/Töchter              P
n baby                  Baby/Babys                   P
m uncle                 Onkel/Onkel                  P
f aunt                  Tante/Tanten                 P
m pupil                 Schüler/Schüler              P
m gardener              Gärtner/Gärtner              P
m fisherman/fishermen   Fischer/Fischer              P
m hunter                Jäger/Jäger                  P
m thief/thieves         Dieb/Diebe                   P
m lawyer                Anwalt/Anwälte               P
f nurse                 Krankenschwester/Krankenschwestern P
m scientist             Wissenschaftler/Wissenschaftler P
m pilot                 Pilot/Piloten                P  weak=Piloten
m sailor                Seemann/Seeleute             P
m prince                Prinz/Prinzen                P  weak=Prinzen
f princess              Prinzessin/Prinzessinnen     P
m musician              Musiker/Musiker              P
m player                Spieler/Spieler              P
m boss                  Chef/Chefs                   P
f family                Familie/Familien             P
m gentleman/gentlemen   Herr/Herren                  P  weak=Herrn
f lady                  Dame/Damen                   P
m mechanic              Mechaniker/Mechaniker        P
m professor             Professor/Professoren        P
m engineer              Ingenieur/Ingenieure         P
m postman/postmen       Briefträger/Briefträger      P
m journalist            Journalist/Journalisten      P  weak=Journalisten
# --- animals ------------------------------------------------------------------------------
m dog                   Hund/Hunde                   A
f cat                   Katze/Katzen                 A
n horse                 Pferd/Pferde                 A
m bird                  Vogel/Vögel                  A
f mouse/mice            Maus/Mäuse                   A
f cow                   Kuh/Kühe                     A
n pig                   Schwein/Schweine             A
m bear                  Bär/Bären                    A  weak=Bären
m lion                  Löwe/Löwen                   A  weak=Löwen
m monkey                Affe/Affen                   A  weak=Affen
m elephant              Elefant/Elefanten            A  weak=Elefanten
m wolf/wolves           Wolf/Wölfe                   A
m fox                   Fuchs/Füchse                 A
m rabbit                Hase/Hasen                   A  weak=Hasen
f duck                  Ente/Enten                   A
f goose/geese           Gans/Gänse                   A
n chicken               Huhn/Hühner                  A
f snake                 Schlange/Schlangen           A
m frog                  Frosch/Frösche               A
f bee                   Biene/Bienen                 A
f spider                Spinne/Spinnen               A
m donkey                Esel/Esel                    A
f goat                  Ziege/Ziegen                 A
m tiger                 Tiger/Tiger                  A
f owl                   Eule/Eulen                   A
n squirrel              Eichhörnchen/Eichhörnchen    A
n camel                 Kamel/Kamele                 A
m parrot                Papagei/Papageien            A
m butterfly             Schmetterling/Schmetterlinge A
# --- things -------------------------------------------------------------------------------
n book                  Buch/Bücher                  TR
m letter                Brief/Briefe                 TR
f newspaper             Zeitung/Zeitungen            TR
f map                   Karte/Karten                 TR
f magazine              Zeitschrift/Zeitschriften    TR
m key                   Schlüssel/Schlüssel          T
m ball                  Ball/Bälle                   T
m hat                   Hut/Hüte                     T
f bag                   Tasche/Taschen               T
m umbrella              Regenschirm/Regenschirme     T
f cup                   Tasse/Tassen                 T
n glass                 Glas/Gläser                  T
m plate                 Teller/Teller                T
n knife/knives          Messer/Messer                T
f fork                  Gabel/Gabeln                 T
m spoon                 Löffel/Löffel                T
f bottle                Flasche/Flaschen             T
f box                   Kiste/Kisten                 T
m pen                   Stift/Stifte                 T
n picture               Bild/Bilder                  T
n photo                 Foto/Fotos                   T
f clock                 Uhr/Uhren                    T
n phone                 Telefon/Telefone             T
m computer              Computer/Computer            T
f camera                Kamera/Kameras               T
m coat                  Mantel/Mäntel                T
m shoe                  Schuh/Schuhe                 T
n shirt                 Hemd/Hemden                  T
n dress                 Kleid/Kleider                T
f jacket                Jacke/Jacken                 T
m ring                  Ring/Ringe                   T
f lamp                  Lampe/Lampen                 T
n toy                   Spielzeug/Spielzeuge         T
f doll                  Puppe/Puppen                 T
f flower                Blume/Blumen                 T
n gift                  Geschenk/Geschenke           T
n ticket                Ticket/Tickets               T
f guitar                Gitarre/Gitarren             T
n radio                 Radio/Radios                 T
m stone                 Stein/Steine                 T
m basket                Korb/Körbe                   T
m mirror                Spiegel/Spiegel              T
f candle                Kerze/Kerzen                 T
f bell                  Glocke/Glocken               T
# --- food and drink -----------------------------------------------------------------------
m apple                 Apfel/Äpfel                  F
f banana                Banane/Bananen               F
n bread                 Brot/-                       FM
m cake                  Kuchen/Kuchen                F
f soup                  Suppe/-                      FM
m cheese                Käse/-                       FM
n egg                   Ei/Eier                      F
f pear                  Birne/Birnen                 F
f orange                Orange/Orangen               F
f carrot                Karotte/Karotten             F
f potato/potatoes       Kartoffel/Kartoffeln         F
f sausage               Wurst/Würste                 F
m rice                  Reis/-                       FM
n meat                  Fleisch/-                    FM
f pizza                 Pizza/Pizzas                 F
n sandwich              Sandwich/Sandwiches          F
f tomato/tomatoes       Tomate/Tomaten               F
f cherry                Kirsche/Kirschen             F
f strawberry            Erdbeere/Erdbeeren           F
n ice_cream             Eis/-                        FM
f chocolate             Schokolade/-                 FM
n water                 Wasser/-                     DM
f milk                  Milch/-                      DM
m coffee                Kaffee/-                     DM
m tea                   Tee/-                        DM
m juice                 Saft/-                       DM
n beer                  Bier/-                       DM
m wine                  Wein/-                       DM
f lemonade              Limonade/-                   DM
# --- buildings and areas -------------------------------------------------------------------
n house                 Haus/Häuser                  B
f school                Schule/Schulen               B
m garden                Garten/Gärten                B
m park                  Park/Parks                   B
f city                  Stadt/Städte                 B
n village               Dorf/Dörfer                  B
m forest                Wald/Wälder                  B
f kitchen               Küche/Küchen                 B
n museum                Museum/Museen                B
m shop                  Laden/Läden                  B
n restaurant            Restaurant/Restaurants       B
f church                Kirche/Kirchen               B
n hospital              Krankenhaus/Krankenhäuser    B
m station               Bahnhof/Bahnhöfe             B
f library               Bibliothek/Bibliotheken      B
n office                Büro/Büros                   B
n room                  Zimmer/Zimmer                B
n hotel                 Hotel/Hotels                 B
m zoo                   Zoo/Zoos                     B
n cinema                Kino/Kinos                   B
n theatre               Theater/Theater              B
f bakery                Bäckerei/Bäckereien          B
m supermarket           Supermarkt/Supermärkte       B
n castle                Schloss/Schlösser            B
m cellar                Keller/Keller                B
n cafe                  Café/Cafés                   B
f barn                  Scheune/Scheunen             B
m stable                Stall/Ställe                 B
n tent                  Zelt/Zelte                   B
m airport               Flughafen/Flughäfen          B
n classroom             Klassenzimmer/Klassenzimmer  B
# --- surfaces ------------------------------------------------------------------------------
m table                 Tisch/Tische                 S  loc=oubfn dir=OT
m chair                 Stuhl/Stühle                 S  loc=oubfn dir=OT
n bed                   Bett/Betten                  S  loc=oubfn dir=OT
n sofa                  Sofa/Sofas                   S  loc=oubfn dir=OT
f bench                 Bank/Bänke                   S  loc=oubfn dir=OT
m desk                  Schreibtisch/Schreibtische   S  loc=oubfn dir=OT
n shelf/shelves         Regal/Regale                 S  loc=obfn dir=T
m carpet                Teppich/Teppiche             S  loc=ou dir=O
n roof                  Dach/Dächer                  S  loc=ou dir=O
f bridge                Brücke/Brücken               S  loc=oun dir=OTC
f street                Straße/Straßen               S  loc=o dir=OC
m tree                  Baum/Bäume                   S  loc=oubfn dir=OT
m hill                  Hügel/Hügel                  S  loc=obf dir=OC
f meadow                Wiese/Wiesen                 S  loc=o dir=OC
m mountain              Berg/Berge                   S  loc=o dir=OT
f island                Insel/Inseln                 S  loc=o dir=OT
n field                 Feld/Felder                  S  loc=o dir=OC
# --- edges (at) -----------------------------------------------------------------------------
n window                Fenster/Fenster              E  loc=a dir=T
f door                  Tür/Türen                    E  loc=a dir=T
m lake                  See/Seen                     E  loc=ai dir=TICR
m river                 Fluss/Flüsse                 E  loc=ai dir=TIC
n sea                   Meer/Meere                   E  loc=ai dir=TI
m beach                 Strand/Strände               E  loc=a dir=T
f wall                  Wand/Wände                   E  loc=a dir=T
# --- vehicles --------------------------------------------------------------------------------
n car                   Auto/Autos                   V
m bus                   Bus/Busse                    V
m train                 Zug/Züge                     V
n bicycle               Fahrrad/Fahrräder            V  loc=bn dir=T
n boat                  Boot/Boote                   V
n ship                  Schiff/Schiffe               V
n plane                 Flugzeug/Flugzeuge           V
m truck                 Lastwagen/Lastwagen          V
n taxi                  Taxi/Taxis                   V
# --- abstract ------------------------------------------------------------------------------
f question              Frage/Fragen                 X
f answer                Antwort/Antworten            X
f story                 Geschichte/Geschichten       XR
n song                  Lied/Lieder                  X
f idea                  Idee/Ideen                   X
m plan                  Plan/Pläne                   X
n problem               Problem/Probleme             X
m name                  Name/Namen                   X  weak=Namen
m joke                  Witz/Witze                   X
n game                  Spiel/Spiele                 X
f music                 Musik/-                      XM
"""
