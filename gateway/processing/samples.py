"""Sample group conversations and drafts for the processing backend (used by `ohttp demo`)."""

from __future__ import annotations

from typing import Final

Chat = tuple[tuple[str, str], ...]  # (sender, text) in chronological order

ENGLISH_CHAT: Final[Chat] = (
    ("Alice", "Hey everyone! So are we still on for Sam's birthday dinner?"),
    ("Ben", "Yes!! Wouldn't miss it 🎉"),
    ("Chloé", "Same. Which day works for everyone, Friday or Saturday?"),
    ("Alice", "Friday is tough for me, I have a late shift until 9."),
    ("Ben", "Saturday works. How about Luigi's on Main Street? They have a big table in the back."),
    ("Dev", "lol Luigi's again"),
    ("Dev", "fine by me though, their tiramisu is worth it"),
    ("Chloé", "Saturday at Luigi's sounds good. What time?"),
    ("Alice", "Let's say 7:30pm. I'll call Luigi's tomorrow and book a table for 7."),
    ("Ben", "Perfect. Should we get Sam a joint present? "
            "I was thinking of the pottery class she keeps talking about."),
    ("Dev", "Great idea, the pottery class is $240 for two sessions."),
    ("Chloé", "So that's $40 each if all six of us chip in."),
    ("Alice", "Works for me. Ben, can you buy it and we'll send you the money?"),
    ("Ben", "Sure, I'll order it tonight. Send me $40 each by Friday please."),
    ("Chloé", "Done! And remember, it's a surprise, so nobody tell Sam 🤫"),
)

FRENCH_CHAT: Final[Chat] = (
    ("Julie", "Coucou tout le monde ! Je déménage enfin le samedi 14 juin 😅"),
    ("Karim", "Félicitations !! Tu as besoin d'aide pour le déménagement ?"),
    ("Julie", "Oui, carrément. J'ai loué un camion de 12 m³ de 9h à 18h."),
    ("Léa", "Je peux venir le matin, mais je dois partir vers 14h."),
    ("Thomas", "Moi je suis dispo toute la journée. Je peux conduire le camion si tu veux."),
    ("Julie", "Super, merci Thomas ! Il faut passer prendre le camion à 8h30 à Montreuil."),
    ("Karim", "Il y a un ascenseur dans le nouvel appart ?"),
    ("Julie", "Non... 4e étage sans ascenseur 🙈"),
    ("Léa", "Aïe. On devrait prévoir des sangles et un diable pour les meubles."),
    ("Karim", "J'ai un diable, je l'apporte. Et je m'occupe des pizzas pour le midi."),
    ("Thomas", "mdr ok"),
    ("Léa", "Du coup on se retrouve à 9h chez Julie, rue des Lilas ?"),
    ("Julie", "Oui, 9h rue des Lilas, c'est parfait. Je prépare les cartons d'ici vendredi."),
    ("Thomas", "Pensez à prendre des gants !"),
    ("Karim", "Ça marche, à samedi 💪"),
)

ENGLISH_DRAFT: Final = (
    "hi team,  i just wanted to let you know that the the report is basically done. "
    "In order to finish it we're gonna need the final numbers asap ,i think friday is ok!!!"
)

FRENCH_DRAFT: Final = (
    "salut ,  en fait le rapport est presque fini. "
    "Au jour d'aujourd'hui il manque juste les chiffres chiffres de mars, c'est pas grave"
)


def summarize_payload(chat: Chat, max_sentences: int = 4) -> dict[str, object]:
    """The JSON body of a `POST /v1/summarize` request for one of the sample chats."""
    return {
        "messages": [{"sender": sender, "text": text} for sender, text in chat],
        "max_sentences": max_sentences,
    }
