"""What a new upstream session of a reconnected call is told (``builtin._openai_sdk``)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

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


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["type", "text", "seq"]),
            st.one_of(
                st.sampled_from(["user.transcript.final", "assistant.transcript.final", "vad"]),
                st.text(max_size=300),
                st.integers(),
                st.none(),
            ),
        ),
        max_size=40,
    ),
    st.integers(min_value=1, max_value=500),
)
def test_any_events_keep_the_recap_within_its_budget(
    events: list[dict[str, object]], max_chars: int
) -> None:
    recap = Recap(max_chars=max_chars)
    for event in events:
        recap.add(event)
    text = recap.text()
    assert len(text) == len(recap) <= max_chars
    assert all(line.startswith(("Caller: ", "Assistant: ")) for line in text.splitlines()[1:])
