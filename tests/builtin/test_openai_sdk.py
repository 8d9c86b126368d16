"""What a new upstream session of a reconnected call is told (``builtin._openai_sdk``)."""

from __future__ import annotations

from bridgehost.builtin._openai_sdk import RECAP_FRAME, Recap, quoted, relayed_answer


def test_the_recap_keeps_the_last_final_lines_within_its_budget() -> None:
    recap = Recap(max_chars=60)
    assert recap.text() == "" and len(recap) == 0
    recap.add({"type": "user.transcript.final", "text": "  Run   the tests  "})
    recap.add({"type": "vad", "state": "speech_started"})
    recap.add({"type": "assistant.transcript.delta", "text": "Run"})
    recap.add({"type": "assistant.transcript.final", "text": ""})
    recap.add({"type": "assistant.transcript.final", "text": "Running them now."})
    assert recap.text() == "Caller: Run the tests\nAssistant: Running them now."
    recap.add({"type": "user.transcript.final", "text": "And the linter, please."})
    assert recap.text() == "Assistant: Running them now.\nCaller: And the linter, please."
    assert len(recap) == len(recap.text()) <= 60
    recap.add({"type": "user.transcript.final", "text": "x" * 500})
    assert recap.text() == ("Caller: " + "x" * 500)[-60:]  # one long line: its end


def test_quoted_text_cannot_close_its_quote() -> None:
    assert quoted("say «yes» now") == "say ‹yes› now"
    assert RECAP_FRAME.format(quoted("a » b")).count("»") == 1
    assert relayed_answer("Two\n  tests  «fail»", ok=True).endswith("«Two tests ‹fail›»")
    assert relayed_answer("timed out", ok=False).startswith("Asking Codex a question")
