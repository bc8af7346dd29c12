"""Word lists and phrase tables for the private-processing backend (immutable data only)."""

from __future__ import annotations

from typing import Final


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Stop words: function words that carry no topic. Used for language detection (ratio of
# each list's hits) and removed before sentence scoring. Both accented and unaccented
# French spellings, because chat users often skip accents.
STOP_WORDS: Final[dict[str, frozenset[str]]] = {
    "en": _words(
        """a about above after again against all am an and any are aren't as at be because
        been before being below between both but by can can't cannot could couldn't did didn't
        do does doesn't doing don't down during each few for from further had hadn't has hasn't
        have haven't having he he'd he'll he's her here here's hers herself him himself his how
        how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most
        mustn't my myself no nor not of off on once only or other ought our ours ourselves out
        over own same shan't she she'd she'll she's should shouldn't so some such than that
        that's the their theirs them themselves then there there's these they they'd they'll
        they're they've this those through to too under until up very was wasn't we we'd we'll
        we're we've were weren't what what's when when's where where's which while who who's
        whom why why's with won't would wouldn't you you'd you'll you're you've your yours
        yourself yourselves also just will get got going gonna really still even us one
        would've could've should've there'll it'll that'll"""
    ),
    "fr": _words(
        """au aux avec ce ces dans de des du elle en et eux il ils je la le les leur leurs lui
        ma mais me même meme mes moi mon ne nos notre nous on ou où par pas pour qu que qui sa
        se ses son sur ta te tes toi ton tu un une vos votre vous c d j l à a m n s t y été
        ete étée étées étés étant suis es est sommes êtes etes sont serai seras sera serons
        serez seront serais serait serions seriez seraient étais était étions étiez étaient
        fus fut fûmes fûtes furent sois soit soyons soyez soient fusse fusses fût fussions
        fussiez fussent ayant eu eue eues eus ai as avons avez ont aurai auras aura aurons
        aurez auront aurais aurait aurions auriez auraient avais avait avions aviez avaient
        eut eûmes eûtes eurent aie aies ait ayons ayez aient cette cet ça ca cela ceci celui
        celle ceux celles si tout tous toute toutes très tres aussi alors donc car comme
        quand puis encore déjà deja bien plus moins peu trop là la ici y en non oui ni rien
        quelque quelques chaque autre autres sans sous vers chez entre depuis pendant avant
        après apres dont lequel laquelle lesquels quoi faut fait faire peut peux"""
    ),
    "es": _words(
        """el la los las un una unos unas y o pero de del al en con por para que qué es son
        está están estoy era fue ser estar hay yo tú tu él ella nosotros vosotros ellos ellas
        me te se nos mi mis su sus lo le les como cuando donde muy más mas ya también no sí
        si este esta estos estas ese esa eso porque hasta desde sin sobre entre todo todos"""
    ),
    "de": _words(
        """der die das den dem des ein eine einen einem einer und oder aber in im an am auf
        aus bei mit nach von vor zu zum zur für fur über uber unter ist sind war waren bin
        bist sein haben hat habe hatte ich du er sie es wir ihr mich dich sich uns euch mein
        dein nicht kein keine auch noch schon nur sehr wie wenn weil dass da hier dort was
        wer wo ja nein so dann denn doch mal"""
    ),
}

# Words that carry no information in a chat (reactions, fillers, greetings), in any language.
CHAT_NOISE: Final[frozenset[str]] = _words(
    """lol lmao rofl haha hahaha hehe ok okay k kk yeah yea yep yup yes no nope hey hi hello
    thanks thank thx ty please pls plz cool nice great awesome wow omg oh ah hmm um uh sure
    same agreed guys everyone alright good fine
    mdr ptdr xd coucou salut bonjour bonsoir merci ouais ouaip oui non bon ben bah euh super
    génial genial top parfait d'accord dac tlm"""
)

# Common verbs and vague words: frequent in chats, never the topic. Removed before scoring.
WEAK_WORDS: Final[frozenset[str]] = _words(
    """say says said think thinking thought know want wants like sound sounds work works
    make makes take go goes come see look let lets thing things something anything way lot
    bit need maybe probably though keep keeps talking talk tell idea
    dire dit dis pense penses sais sait veux veut voir aller va vais vas truc trucs chose
    choses besoin coup enfin dois doit devrait devrais pouvoir peut-être peutêtre venir
    prendre occupe occuper passer mettre"""
)

# Leading discourse markers dropped from a quoted sentence so it reads on its own.
LEADING_MARKERS: Final[tuple[str, ...]] = (
    "ok so", "okay so", "so", "yeah", "yes", "well", "also", "and", "but", "ok", "okay",
    "lol", "haha", "oh", "hey", "ah", "right", "sure",
    "du coup", "alors", "bon", "ben", "bah", "et", "mais", "oui", "ouais", "sinon", "euh",
    "bref",
)

# Phrases that mark a decision or commitment in a group chat.
DECISION_MARKERS: Final[dict[str, tuple[str, ...]]] = {
    "en": (
        "let's", "lets", "we'll", "i'll", "we will", "i will", "decided", "agreed", "confirmed",
        "booked", "reserved", "deal", "going with", "plan is", "we should", "can you",
        "remember", "don't forget", "make sure", "i can", "i've booked", "settled",
        "sounds good", "works for me", "fine by me", "count me in",
    ),
    "fr": (
        "on se retrouve", "c'est décidé", "c'est decide", "je m'occupe", "je peux", "j'ai réservé",
        "j'ai reserve", "j'ai loué", "j'ai loue", "on part", "il faut", "on devrait", "on fait",
        "je prépare", "je prepare", "j'apporte", "je l'apporte", "rendez-vous", "rdv", "pensez",
        "n'oubliez pas", "on dit", "réservé", "confirmé", "je passe", "ça marche",
        "c'est parfait", "ok pour", "d'accord pour", "ça me va",
    ),
}

WEEKDAYS_AND_MONTHS: Final[frozenset[str]] = _words(
    """monday tuesday wednesday thursday friday saturday sunday weekend tomorrow tonight today
    yesterday morning afternoon evening noon midnight week month
    january february march april may june july august september october november december
    lundi mardi mercredi jeudi vendredi samedi dimanche demain aujourd'hui hier soir matin
    après-midi apres-midi midi minuit semaine mois week-end
    janvier février fevrier mars avril mai juin juillet août aout septembre octobre novembre
    décembre decembre"""
)

# English day and month names, capitalised by the rewrite ("may" and "march" are also verbs).
ENGLISH_CALENDAR_NAMES: Final[frozenset[str]] = _words(
    """monday tuesday wednesday thursday friday saturday sunday january february april june
    july august september october november december"""
)

# Abbreviations whose final period does not end a sentence.
ABBREVIATIONS: Final[frozenset[str]] = _words(
    """mr mrs ms dr prof st jr sr vs etc e.g eg i.e ie approx appt apt dept min max
    fig cf p.ex m mme mlle mm av bd env"""
)

# French elided articles and pronouns before an apostrophe (l'équipe -> équipe).
ELISIONS: Final[frozenset[str]] = _words("l d j qu n s c m t jusqu lorsqu puisqu quoiqu")

# --- Rewrite tables: (phrase, replacement). Matched as whole words, case-insensitively. ---

REDUNDANT_PHRASES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "en": (
        ("due to the fact that", "because"),
        ("in spite of the fact that", "although"),
        ("despite the fact that", "although"),
        ("at this point in time", "now"),
        ("at the present time", "now"),
        ("in the near future", "soon"),
        ("in the event that", "if"),
        ("for the purpose of", "for"),
        ("until such time as", "until"),
        ("in order to", "to"),
        ("each and every", "every"),
        ("first and foremost", "first"),
        ("a large number of", "many"),
        ("the majority of", "most"),
        ("has the ability to", "can"),
        ("have the ability to", "can"),
        ("is able to", "can"),
        ("are able to", "can"),
        ("with regard to", "about"),
        ("with respect to", "about"),
        ("in regard to", "about"),
        ("make a decision", "decide"),
        ("come to a conclusion", "conclude"),
        ("take into consideration", "consider"),
        ("on a daily basis", "daily"),
        ("on a weekly basis", "weekly"),
        ("at all times", "always"),
        ("it is important to note that", ""),
        ("please be advised that", ""),
        ("i just wanted to let you know that", ""),
        ("end result", "result"),
        ("final outcome", "outcome"),
        ("past history", "history"),
        ("future plans", "plans"),
        ("advance planning", "planning"),
        ("completely finished", "finished"),
        ("absolutely essential", "essential"),
        ("basic fundamentals", "fundamentals"),
        ("close proximity", "proximity"),
        ("unexpected surprise", "surprise"),
        ("free gift", "gift"),
        ("join together", "join"),
        ("repeat again", "repeat"),
        ("return back", "return"),
        ("revert back", "revert"),
        ("plan ahead", "plan"),
        ("still remains", "remains"),
        ("added bonus", "bonus"),
    ),
    "fr": (
        ("au jour d'aujourd'hui", "aujourd'hui"),
        ("prévoir à l'avance", "prévoir"),
        ("monter en haut", "monter"),
        ("descendre en bas", "descendre"),
        ("voire même", "voire"),
        ("comme par exemple", "comme"),
        ("puis ensuite", "puis"),
        ("car en effet", "car"),
        ("mais cependant", "mais"),
        ("collaborer ensemble", "collaborer"),
        ("réunir ensemble", "réunir"),
        ("répéter encore", "répéter"),
        ("dans le but de", "pour"),
        ("afin de pouvoir", "pour"),
        ("à l'heure actuelle", "actuellement"),
        ("en raison du fait que", "parce que"),
        ("du fait que", "parce que"),
    ),
}

# Fillers removed in the "concise" style; a trailing comma means "only when followed by one".
FILLER_WORDS: Final[dict[str, tuple[str, ...]]] = {
    "en": (
        "basically", "actually", "literally", "really", "very", "totally", "honestly",
        "kind of", "sort of", "just", "definitely", "obviously", "essentially",
        "i mean,", "you know,",
    ),
    "fr": (
        "en fait", "du coup", "franchement", "vraiment", "carrément", "en quelque sorte",
        "clairement", "littéralement",
    ),
}

# Contractions (English). Expanded for "formal", produced for "friendly".
CONTRACTIONS: Final[tuple[tuple[str, str], ...]] = (
    ("can't", "cannot"),
    ("won't", "will not"),
    ("shan't", "shall not"),
    ("don't", "do not"),
    ("doesn't", "does not"),
    ("didn't", "did not"),
    ("isn't", "is not"),
    ("aren't", "are not"),
    ("wasn't", "was not"),
    ("weren't", "were not"),
    ("haven't", "have not"),
    ("hasn't", "has not"),
    ("hadn't", "had not"),
    ("wouldn't", "would not"),
    ("shouldn't", "should not"),
    ("couldn't", "could not"),
    ("mustn't", "must not"),
    ("i'm", "I am"),
    ("you're", "you are"),
    ("we're", "we are"),
    ("they're", "they are"),
    ("i've", "I have"),
    ("you've", "you have"),
    ("we've", "we have"),
    ("they've", "they have"),
    ("i'll", "I will"),
    ("you'll", "you will"),
    ("we'll", "we will"),
    ("they'll", "they will"),
    ("he'll", "he will"),
    ("she'll", "she will"),
    ("it'll", "it will"),
    ("i'd", "I would"),
    ("you'd", "you would"),
    ("we'd", "we would"),
    ("they'd", "they would"),
    ("it's", "it is"),
    ("that's", "that is"),
    ("there's", "there is"),
    ("what's", "what is"),
    ("he's", "he is"),
    ("she's", "she is"),
    ("let's", "let us"),
)

# Informal words and chat abbreviations, replaced in the "formal" style.
INFORMAL_WORDS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "en": (
        ("gonna", "going to"),
        ("wanna", "want to"),
        ("gotta", "have to"),
        ("kinda", "kind of"),
        ("sorta", "sort of"),
        ("yeah", "yes"),
        ("yep", "yes"),
        ("yup", "yes"),
        ("nope", "no"),
        ("thx", "thank you"),
        ("pls", "please"),
        ("plz", "please"),
        ("btw", "by the way"),
        ("asap", "as soon as possible"),
        ("fyi", "for your information"),
        ("imo", "in my opinion"),
        ("u", "you"),
        ("ur", "your"),
        ("cuz", "because"),
        ("tho", "though"),
        ("hey", "hello"),
    ),
    "fr": (
        ("ouais", "oui"),
        ("bcp", "beaucoup"),
        ("stp", "s'il te plaît"),
        ("svp", "s'il vous plaît"),
        ("pq", "pourquoi"),
        ("pk", "pourquoi"),
        ("jsp", "je ne sais pas"),
        ("t'es", "tu es"),
        ("y'a", "il y a"),
        ("chui", "je suis"),
        ("c'est pas", "ce n'est pas"),
        ("il y a pas", "il n'y a pas"),
        ("slt", "salut"),
        ("mtn", "maintenant"),
        ("tjrs", "toujours"),
        ("rdv", "rendez-vous"),
    ),
}

# Word pairs that are legitimately repeated ("had had", "nous nous").
ALLOWED_REPEATS: Final[frozenset[str]] = _words("had that is can nous vous bye ha")
