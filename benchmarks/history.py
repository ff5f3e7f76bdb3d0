"""Figure 3: the turn overhead as the history grows from 10 to 10,000 turns.

Histories are built the way the extension would have built them: each synthetic
turn is fitted with the library's own ``fit_to_window`` into a 32k window, and its
usage is what the emulator reports for the messages sent (its count is the request's
framing plus each message's own, so summing per-message counts is exact). The
overhead of a turn is its ``%%chat`` time minus the SDK's ``run()`` time for the same
fitted messages.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from itertools import accumulate

from yagpt_magic.core.conversation import Thread, Turn, Usage, messages_sha256
from yagpt_magic.core.fitting import fit_to_window
from yagpt_magic.emulator import REQUEST_FRAMING, count_tokens, tokenize_text

from .common import (
    FOLDER,
    MAX_TOKENS,
    TEMPERATURE,
    WINDOW,
    EmulatorProcess,
    Row,
    chat_shell,
    emulator_process,
    fmt_time,
    interleave,
    median,
    sdk_model,
)
from .turn import TurnProbe, check_same_answer, sdk_run

SYSTEM = "You are a patient tutor. Answer with examples and keep code in fenced blocks."
QUESTION = "Summarise what we covered so far in three bullet points."
_VOCABULARY_TEXT = (
    "data frame index column merge join group aggregate plot axis figure model train "
    "test split score loss gradient tensor batch epoch notebook kernel cell output "
    "error trace import module function class method value list dict string number "
    "why how what when explain show compare example faster slower memory cache"
)
_VOCABULARY = _VOCABULARY_TEXT.split()


def _prose(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(_VOCABULARY) for _ in range(words))
    return text[:1].upper() + text[1:] + "."


def synthetic_thread(name: str, turns: int, *, seed: int = 7) -> Thread:
    """A thread of ``turns`` turns, each fitted and accounted as a live chat would be."""
    rng = random.Random(seed)
    thread = Thread(name, SYSTEM)
    budget = WINDOW - MAX_TOKENS
    def one(role: str, text: str) -> int:
        return count_tokens([(role, text)]) - REQUEST_FRAMING

    system_tokens = REQUEST_FRAMING + one("system", SYSTEM)
    turn_tokens: list[int] = []
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def count(messages: list[dict[str, str]]) -> int:
        return count_tokens([(m["role"], m["text"]) for m in messages])

    for i in range(turns):
        user = f"Question {i}: " + _prose(rng, rng.randint(15, 80))
        reply = "\n\n".join(_prose(rng, rng.randint(30, 120)) for _ in range(rng.randint(1, 4)))
        fit = fit_to_window(thread, user, budget=budget, count=count, upto=i)
        prefix = list(accumulate(turn_tokens[fit.start :], initial=0))
        user_tokens = one("user", user)
        sent = system_tokens + prefix[-1] + user_tokens
        completion = len(tokenize_text(reply))
        turn_tokens.append(user_tokens + one("assistant", reply))
        thread.commit(
            Turn(
                user=user,
                reply=reply,
                cell_id=f"cell-{i}",
                model=f"gpt://{FOLDER}/yandexgpt/latest",
                settings={"model_version": "emulator (latest)", "temperature": TEMPERATURE,
                          "max_tokens": MAX_TOKENS, "reasoning_mode": None},
                usage=Usage(sent, completion, 0, sent + completion),
                started=now,
                finished=now,
                sha256=messages_sha256(thread.request(user, upto=i, start=fit.start)),
                system_prompt=SYSTEM,
                context_start=fit.start,
            )
        )
    return thread


def measure(emu: EmulatorProcess, sizes: tuple[int, ...], reps: int) -> Row:
    model = sdk_model(emu.address)
    overheads: dict[int, float] = {}
    details = []
    with chat_shell(emu) as shell:
        magics = shell.magics_manager.registry["ChatMagics"]
        for size in sizes:
            name = f"h{size}"
            magics.session.threads[name] = synthetic_thread(name, size)
            probe = TurnProbe(shell, name, QUESTION)
            probe()
            check_same_answer(model, probe)
            base, ours = interleave(sdk_run(model, probe.sent), probe, reps=reps, warmup=5)
            overheads[size] = median(ours) - median(base)
            sent_tokens = magics.session.threads[name].turns[-1].usage.input_tokens
            details.append(
                f"{size:>6} turns: {len(probe.sent) // 2} turns sent (~{sent_tokens} tokens), "
                f"SDK {fmt_time(median(base))}, %%chat {fmt_time(median(ours))}, "
                f"overhead {fmt_time(overheads[size])}"
            )
            del magics.session.threads[name]
    small, large = overheads[sizes[0]], overheads[sizes[-1]]
    return Row(
        figure=f"3. overhead at {sizes[-1]:,} vs {sizes[0]} turns",
        baseline=small,
        ours=large,
        unit="s",
        target="ratio <= 2.0",
        passed=large <= 2 * small,
        details=[f"{reps} interleaved runs each; overhead = %%chat minus SDK run()"] + details,
    )


def run(quick: bool) -> Row:
    sizes = (10, 30) if quick else (10, 100, 1_000, 10_000)
    with emulator_process() as emu:
        return measure(emu, sizes, reps=3 if quick else 100)
