"""gptref.grading.explain for errors that come back from other processes (day 9 and 11's ranks) and the causes
added for issue 23: each message names the student's line and the cause, or no cause when none is known."""

from __future__ import annotations

import multiprocessing
import traceback

import pytest
import torch
import torch.nn as nn

from gptref.grading.explain import call, explain_trace, secondhand


def _message(fn, *args) -> str:
    with pytest.raises(AssertionError) as info:
        call(fn, *args)
    return str(info.value)


def _flatten_badly(grads):
    return torch.cat(grads)


def _stack_badly(grads):
    return torch.stack(grads)


def _trace_of(fn, *args) -> str:
    """The formatted traceback of fn(*args), as a rank writes it to its error file."""
    try:
        fn(*args)
    except Exception:  # noqa: BLE001
        return traceback.format_exc()
    raise AssertionError("expected an error")


GRADS = [torch.zeros(3, 2), torch.zeros(3)]


def test_a_rank_trace_names_the_student_line_and_the_cause():
    msg = explain_trace(_trace_of(_flatten_badly, GRADS), "rank 0")
    assert msg.startswith("rank 0 raised RuntimeError: Tensors must have same number of dimensions")
    assert "of _flatten_badly: return torch.cat(grads)" in msg
    assert "flatten each first" in msg and "torch.stack needs" not in msg


def test_stack_and_cat_get_their_own_cause():
    assert "torch.stack needs tensors of equal shapes" in _message(_stack_badly, GRADS)
    assert "flatten each first" in _message(_flatten_badly, GRADS)


def test_a_peer_that_lost_its_partner_is_secondhand():
    lost = "Traceback ...\nRuntimeError: [../gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:1"
    assert secondhand(lost)
    assert not secondhand(_trace_of(_stack_badly, GRADS))


def test_an_unknown_error_from_a_rank_names_no_cause():
    def odd():
        raise ValueError("something else")

    msg = explain_trace(_trace_of(odd), "rank 1")
    assert msg.startswith("rank 1 raised ValueError: something else") and "What to change" not in msg


def test_weights_that_do_not_fit_name_the_part():
    def load():
        nn.Linear(4, 4).load_state_dict(nn.Linear(4, 16).state_dict())

    msg = _message(load)
    assert "size mismatch for weight" in msg and "do not fit your module" in msg


def test_cross_entropy_on_three_dimensions_is_explained():
    def loss():
        return torch.nn.functional.cross_entropy(torch.randn(2, 6, 9), torch.randint(0, 9, (2, 6)))

    assert "classes in dimension 1" in _message(loss)


def test_an_empty_optimizer_is_explained():
    def build():
        return torch.optim.AdamW([], lr=0.1)

    assert "empty list of parameters" in _message(build)


def test_a_forked_rank_trace_round_trips():
    """What the notebooks do: a forked process writes its traceback as text; the parent explains it."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()

    def rank():
        queue.put(_trace_of(_stack_badly, GRADS))

    worker = ctx.Process(target=rank)
    worker.start()
    trace = queue.get(timeout=30)
    worker.join()
    assert "torch.stack needs tensors of equal shapes" in explain_trace(trace, "rank 1")


def test_a_slice_of_the_wrong_size_reshaped_is_explained():
    def unflatten(flat, grads):
        return [flat[1:1 + g.numel()].view_as(g) for g in grads]

    msg = _message(unflatten, torch.zeros(4), [torch.zeros(2, 2)])
    assert "is invalid for input of size 3" in msg and "slice bounds" in msg


def test_a_rank_that_only_lost_its_peer_is_told_that_the_ranks_made_different_collective_calls():
    trace = ('Traceback (most recent call last):\n  File "/tmp/ipykernel_1/123.py", line 6, in broadcast_parameters\n'
             '    dist.broadcast(p, src=0)\n'
             "RuntimeError: [/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed "
             "by peer [127.0.0.1]:27358")
    message = explain_trace(trace, "rank 0")
    assert "one rank called a collective" in message and "the same collective calls" in message, message
    assert "with the same src or dst on every rank" in message, message  # broadcast(p, src=rank) hangs the same way


# issue 23, fresh set 6: errors whose causes the messages did not name
def test_a_hook_that_receives_the_gradient_is_told_the_two_kinds_of_hook():
    bucket_of = {nn.Parameter(torch.zeros(2)): 0}

    def ready(grad):  # a register_hook hook gets the gradient, which is no key of the dict
        return bucket_of[grad]

    message = explain_trace(_trace_of(ready, torch.ones(2)), "rank 0")
    assert "register_post_accumulate_grad_hook calls hook(param)" in message, message


def test_waiting_on_a_blocking_collective_is_told_to_use_async_op():
    def finish(handles):
        for handle in handles:
            handle.wait()

    assert "async_op=True" in _message(finish, [None])


def test_a_code_point_looked_up_in_a_byte_vocabulary_is_named():
    vocab = {i: bytes([i]) for i in range(256)}

    def first_token(text):
        return vocab[ord(text[0])]

    message = _message(first_token, "—x")
    assert "code point of the character '—'" in message and "text.encode('utf-8')" in message, message
    assert "code point" not in _message(first_token, "")  # an IndexError, not a code point


def test_an_index_error_after_divmod_points_at_the_order_it_is_unpacked_in():
    def pick(scores, beams):
        token, row = divmod(int(scores.argmax()), scores.shape[1])
        return beams[row], token

    message = _message(pick, torch.tensor([[0.0, 0.0, 5.0]]), [[1]])
    assert "the quotient FIRST" in message and "token, row = divmod" in message, message


def test_an_index_error_after_divmod_by_the_wrong_size_names_the_divisor_too():
    def pick(scores, beams):  # a row of V = 3 scores per beam, divided by the number of beams (1): row 2 of 1
        row, token = divmod(int(scores.argmax()), len(beams))
        return beams[row], token

    message = _message(pick, torch.tensor([[0.0, 0.0, 5.0]]), [[1]])
    assert "divided by V (the length of a row, not the number of rows)" in message, message
    assert "check the divisor and the order" in message, message
