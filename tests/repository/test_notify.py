"""Bilingual e-mail: both languages in one message, one subject line whatever the titles."""

from django.core import mail
from django.utils.translation import get_language

from repository.governance.notify import send_bilingual


def test_one_message_in_japanese_then_english_with_a_one_line_subject():
    def compose():
        return f"Title\nwith a break ({get_language()})", f"Body in {get_language()}"

    send_bilingual(recipients=["pm@example.org", "", "pm@example.org"], compose=compose, what="t")

    (message,) = mail.outbox
    assert message.to == ["pm@example.org"]
    assert message.subject == "[Kura] Title with a break (ja) / Title with a break (en)"
    assert message.body.index("Body in ja") < message.body.index("Body in en")


def test_nobody_to_tell_sends_nothing():
    send_bilingual(recipients=["", None], compose=lambda: ("s", "b"), what="t")
    assert mail.outbox == []
