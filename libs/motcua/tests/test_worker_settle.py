"""The worker's consumer when the broker goes away between handling a message and settling it:
acknowledging (or requeueing) on the lost connection raises a socket error, which nameko does not
catch and which used to kill the worker's whole container (seen in
``tests/reliability/test_broker_restart.py``). The broker requeues what was not acknowledged, so
the consumer only logs it."""

from __future__ import annotations

from types import SimpleNamespace

import amqp.exceptions
import pytest
from kombu import Queue

from motcua.worker import DeliveryConsumer


class Guard:
    max_delay_s = 1.0

    def __init__(self, delay):
        self.delay = delay

    def succeeded(self, delivery):
        pass

    def failed(self, delivery, error):
        return self.delay


def consumer_losing_its_connection(error: Exception, delay=None) -> DeliveryConsumer:
    def lost(message):
        raise error

    consumer = DeliveryConsumer(Queue("routing.bim-son"))
    consumer.redelivery = SimpleNamespace(guard=Guard(delay))
    consumer.consumer = SimpleNamespace(ack_message=lost, requeue_message=lost)
    return consumer


@pytest.mark.parametrize("error", [ConnectionResetError(104, "Connection reset by peer"), BrokenPipeError(),
                                   amqp.exceptions.RecoverableConnectionError("connection already closed")])
def test_an_ack_on_a_lost_connection_does_not_raise(error):
    consumer = consumer_losing_its_connection(error)
    assert consumer.handle_result(object(), object(), None, result="done") == ("done", None)


def test_parking_on_a_lost_connection_does_not_raise():
    consumer = consumer_losing_its_connection(ConnectionResetError(104, "reset"), delay=None)
    failure = (ValueError, ValueError("bad"), None)
    assert consumer.handle_result(object(), object(), None, exc_info=failure) == (None, failure)


def test_other_errors_of_an_ack_still_raise():
    consumer = consumer_losing_its_connection(RuntimeError("a bug"))
    with pytest.raises(RuntimeError):
        consumer.handle_result(object(), object(), None)
