"""Prometheus counters for the pipeline, served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """One registry per bot, so that several bots (and tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "nicobot_messages_received", "Customer messages accepted", ["channel"], registry=r
        )
        self.duplicates = Counter(
            "nicobot_duplicate_deliveries",
            "Webhook deliveries of a known message",
            ["channel"],
            registry=r,
        )
        self.answered = Counter(
            "nicobot_replies", "Replies produced, by how", ["channel", "mode"], registry=r
        )
        self.sends = Counter(
            "nicobot_sends", "Messages delivered to a channel", ["channel"], registry=r
        )
        self.send_failures = Counter(
            "nicobot_send_failures", "Failed delivery attempts", ["channel"], registry=r
        )
        self.sends_given_up = Counter(
            "nicobot_sends_given_up",
            "Deliveries marked failed after every attempt",
            ["channel"],
            registry=r,
        )
        self.resends = Counter(
            "nicobot_resends_after_crash",
            "Deliveries of unknown outcome sent again although the channel could not tell "
            "whether the first attempt went out (the customer may have them twice)",
            ["channel"],
            registry=r,
        )
        self.webhook_calls = Counter(
            "nicobot_webhook_calls",
            "Webhook calls by channel slug and outcome (handled, rejected, failed)",
            ["slug", "outcome"],
            registry=r,
        )
        self.reconciled = Counter(
            "nicobot_sends_reconciled",
            "Deliveries of unknown outcome checked with the channel before resending, by "
            "what it found (sent: not sent again)",
            ["channel", "found"],
            registry=r,
        )
        self.turn_failures = Counter(
            "nicobot_turn_failures",
            "Failed attempts at answering a turn (an exception in a hook or the bot)",
            ["channel"],
            registry=r,
        )
        self.turns_parked = Counter(
            "nicobot_turns_failed",
            "Turns kept as failed after every attempt (the customer got the apology)",
            ["channel"],
            registry=r,
        )
        self.handoffs = Counter(
            "nicobot_handoffs",
            "Conversations paused by an operator message or request",
            ["channel"],
            registry=r,
        )
        self.llm_seconds = Histogram(
            "nicobot_llm_seconds",
            "LLM call latency",
            buckets=(0.25, 0.5, 1, 2, 4, 8, 15, 25, 60),
            registry=r,
        )
        self.queue = Gauge("nicobot_queue", "Pipeline queue sizes", ["queue"], registry=r)
        self.loop_lag = Gauge(
            "nicobot_event_loop_lag_seconds",
            "How late the event loop runs a 10 ms timer (what a new webhook waits)",
            registry=r,
        )
        self.turn_limit = Gauge(
            "nicobot_turns_in_flight_limit",
            "Conversations answered at once now: [pipeline] concurrency, lower while the "
            "event loop runs late",
            registry=r,
        )

    def render(self, counts: dict[str, int], loop_lag: float, turn_limit: int) -> bytes:
        for name, value in counts.items():
            self.queue.labels(name).set(value)
        self.loop_lag.set(loop_lag)
        self.turn_limit.set(turn_limit)
        return generate_latest(self.registry)
