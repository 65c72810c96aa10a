"""Tests of the client package against running daemons, started by the Swift test
suite (Tests/IntegrationTests/PythonClientTests.swift), which passes their endpoints:

    CFE_SUB_INPUT, CFE_SUB_OUTPUT, CFE_SUB_CONTROL      a daemon with input.type sub
    CFE_PULL_INPUT, CFE_PULL_OUTPUT, CFE_PULL_CONTROL   a daemon with input.type pull, batch size 16
    CFE_CURVE_INPUT, CFE_CURVE_OUTPUT, CFE_CURVE_CONTROL, CFE_CURVE_SECRET, CFE_CURVE_SERVER,
    CFE_CURVE_STRANGER                                  a CURVE daemon, this client's key files
"""
import os
import tempfile
import json
import time
import unittest

import zmq

from cfensembled import (Alert, CommandRefused, ControlClient, CurveKeys, DaemonUnavailable, Error, Health, Producer,
                         Score, Subscriber, parse)


def env(name):
    value = os.environ.get(name)
    if not value:
        raise unittest.SkipTest(f"{name} is not set (run through the Swift test suite)")
    return value


def collect(sub, until, timeout=20.0):
    """Messages until `until(messages)` is true or the timeout passes."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(got):
        m = sub.recv(timeout=0.2)
        if m is not None:
            got.append(m)
    return got


class MessageParsing(unittest.TestCase):
    def test_each_topic_parses_to_its_type(self):
        s = parse(b"score", b'{"id":"a","score":0.7,"probability":0.02,"ts":1.5,"model_version":3,"n_preds":2,"fallback":false}')
        self.assertEqual(s, Score(id="a", score=0.7, ts=1.5, model_version=3, n_preds=2, fallback=False, probability=0.02))
        # A daemon without the probability (an earlier build) still parses.
        old = parse(b"score", b'{"id":"a","score":0.7,"ts":1.5,"model_version":3,"n_preds":2,"fallback":false}')
        self.assertIsNone(old.probability)
        a = parse("alert", '{"alert":"classifier_silent","state":"firing","severity":"warning","ts":2,'
                           '"model_version":3,"reason":"r","metrics":{"silent_s":700},"action":"none","classifier":"rf"}')
        self.assertIsInstance(a, Alert)
        self.assertTrue(a.firing)
        self.assertEqual(a.classifier, "rf")
        e = parse(b"error", b'{"ts":1,"topic":"pred","id":"x","reason":"preds.a: 7 is outside [0, 1]"}')
        self.assertEqual((e.topic_of_input, e.id), ("pred", "x"))
        with self.assertRaises(ValueError):
            parse(b"score", b'{"id":"a"}')
        with self.assertRaises(ValueError):
            parse(b"bogus", b"{}")

    def test_curve_keys_read_cfe_keygen_files(self):
        public, secret = CurveKeys.generate()
        server_public, _ = CurveKeys.generate()
        with tempfile.TemporaryDirectory() as d:
            with open(f"{d}/client.key", "w") as f:
                f.write(secret + "\n")
            with open(f"{d}/server.pub", "w") as f:
                f.write(server_public + "\n")
            keys = CurveKeys.from_files(f"{d}/client.key", f"{d}/server.pub")
            self.assertEqual((keys.public_key, keys.secret_key, keys.server_key), (public, secret, server_public))
            with open(f"{d}/bad.key", "w") as f:
                f.write("short\n")
            with self.assertRaises(ValueError):
                CurveKeys.from_files(f"{d}/bad.key", f"{d}/server.pub")

    def test_a_missing_daemon_is_reported_at_once(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(DaemonUnavailable):
                ControlClient(state_dir=d).status()


class PubInput(unittest.TestCase):
    """input.type sub: the producer waits out the slow joiner, then nothing is lost."""

    def test_scores_for_every_pred_iterator_style(self):
        control = ControlClient(env("CFE_SUB_CONTROL"))
        with Subscriber(env("CFE_SUB_OUTPUT"), topics=["score"]) as sub, Producer(env("CFE_SUB_INPUT")) as producer:
            producer.wait_ready(control)
            ids = [f"py-sub-{i}" for i in range(50)]
            for i, id in enumerate(ids):
                producer.send_pred(id, {"xgb": (i % 10) / 10, "rf": 0.5}, ts=1_800_000_000 + i)
            scores = {}
            for m in sub:
                self.assertIsInstance(m, Score)
                if m.id in ids:
                    scores[m.id] = m
                if len(scores) == len(ids):
                    break
            self.assertEqual(len(scores), 50)
            # The readiness check is counted as pings, never as rejected input.
            accounting = control.status()["accounting"]
            self.assertGreaterEqual(accounting["pings"], 1)
            self.assertEqual(control.status()["rejected"], 0)
            self.assertEqual(scores["py-sub-3"].ts, 1_800_000_003)
            self.assertEqual(scores["py-sub-3"].n_preds, 2)
            self.assertTrue(all(0 <= s.score <= 1 for s in scores.values()))
            # Before any label the probability is the simple average of what was reported.
            self.assertAlmostEqual(scores["py-sub-3"].probability, (0.3 + 0.5) / 2, places=6)


class PushInput(unittest.TestCase):
    """input.type pull: labels make the model learn; errors, health and control typed."""

    def test_a_reader_written_for_the_earlier_daemon_still_reads_this_one(self):
        import zmq
        import previous_v1_messages as previous
        ctx = zmq.Context.instance()
        raw = ctx.socket(zmq.SUB)
        raw.setsockopt(zmq.SUBSCRIBE, b"")
        raw.connect(env("CFE_PULL_OUTPUT"))
        time.sleep(0.3)
        producer = Producer(env("CFE_PULL_INPUT"), mode="push")
        for i in range(70):
            producer.send_pred(f"py-old-{i}", {"xgb": 0.8 if i % 3 == 0 else 0.3, "rf": 0.7 if i % 3 == 0 else 0.2})
        for i in range(70):
            producer.send_label(f"py-old-{i}", int(i % 3 == 0))
        got = {"score": [], "health": []}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (len(got["score"]) < 70 or not got["health"]):
            if raw.poll(200):
                topic, body = raw.recv_multipart()
                if topic in (b"score", b"health"):
                    got[topic.decode()].append(body)
        raw.close(0)
        producer.close()
        self.assertGreaterEqual(len(got["score"]), 70)
        self.assertTrue(got["health"])
        for body in got["score"]:
            old, new = previous.parse(b"score", body), parse(b"score", body)
            self.assertIn("probability", json.loads(body))
            self.assertEqual((old.id, old.score, old.model_version, old.fallback), (new.id, new.score, new.model_version, new.fallback))
        health = previous.parse(b"health", got["health"][-1])
        self.assertIn("calibration", health.raw)
        self.assertIn("operating_points", health.raw)

    def test_batches_of_preds_and_labels(self):
        control = ControlClient(env("CFE_PULL_CONTROL"))
        sub = Subscriber(env("CFE_PULL_OUTPUT"), topics=["score", "error"])
        producer = Producer(env("CFE_PULL_INPUT"), mode="push")
        time.sleep(0.3)  # the subscriber's own connection
        before = control.status()
        items = [{"id": f"py-batch-{i}", "preds": {"xgb": 0.9 if i % 4 == 0 else 0.2, "rf": 0.5}, "ts": 1_800_000_000 + i}
                 for i in range(100)]
        items[5]["preds"] = {"xgb": 7}
        self.assertEqual(producer.send_preds(items, max_batch=40), 3)
        got = collect(sub, lambda ms: sum(isinstance(m, Score) and m.id.startswith("py-batch-") for m in ms) >= 99
                      and any(isinstance(m, Error) for m in ms))
        order = [m.id for m in got if isinstance(m, Score) and m.id.startswith("py-batch-")]
        self.assertEqual(order, [f"py-batch-{i}" for i in range(100) if i != 5])
        error = next(m for m in got if isinstance(m, Error))
        self.assertEqual((error.topic_of_input, error.entry, error.id), ("pred_batch", 5, "py-batch-5"))
        self.assertEqual(producer.send_labels([(f"py-batch-{i}", int(i % 4 == 0)) for i in range(100)], max_batch=64), 2)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = control.status()
            if status["accounting"]["labels_learnt"] >= before["accounting"]["labels_learnt"] + 99:
                break
            time.sleep(0.05)
        self.assertEqual(status["accounting"]["labels_learnt"] - before["accounting"]["labels_learnt"], 99)
        self.assertEqual(status["accounting"]["batches"] - before["accounting"].get("batches", 0), 5)
        self.assertTrue(status["accounting"]["balanced"])
        producer.close()
        sub.close()

    def test_learning_errors_health_and_control_callback_style(self):
        control = ControlClient(env("CFE_PULL_CONTROL"))
        sub = Subscriber(env("CFE_PULL_OUTPUT"))
        producer = Producer(env("CFE_PULL_INPUT"), mode="push")
        time.sleep(0.3)  # the subscriber's own connection (PUB/SUB on the output side)
        status_before = control.status()
        before, labelled_before = status_before["model_version"], status_before["labelled"]
        for i in range(32):
            producer.send_pred(f"py-push-{i}", {"xgb": 0.9 if i % 2 else 0.1, "rf": 0.6 if i % 2 else 0.4})
        for i in range(32):
            producer.send_label(f"py-push-{i}", i % 2)
        producer.send_raw("pred", b'{"id":"bad","preds":{"xgb":7}}')
        seen = {"score": 0, "error": [], "health": []}

        def handle(m):
            if isinstance(m, Score) and m.id.startswith("py-push-"):
                seen["score"] += 1
            elif isinstance(m, Error):
                seen["error"].append(m)
            elif isinstance(m, Health):
                seen["health"].append(m)
            return seen["score"] == 32 and seen["error"] and seen["health"] and seen["health"][-1].labelled >= labelled_before + 32

        sub.run(handle, timeout=30)
        self.assertEqual(seen["score"], 32)
        self.assertEqual(seen["error"][0].id, "bad")
        self.assertIn("outside [0, 1]", seen["error"][0].reason)
        health = seen["health"][-1]
        self.assertGreaterEqual(health.model_version, before + 2)
        self.assertEqual(set(health.weights), {"xgb", "rf"})
        status = control.status()
        self.assertTrue(status["accounting"]["balanced"])
        written = control.checkpoint()
        self.assertTrue(written["path"].endswith("checkpoint.cfe"))
        self.assertGreater(written["bytes"], 0)
        version = control.rollback()
        self.assertGreater(version, health.model_version)
        with self.assertRaises(CommandRefused):
            control.request("dance")
        producer.close()
        sub.close()


class Curve(unittest.TestCase):
    def test_allowed_keys_work_and_a_stranger_is_refused(self):
        keys = CurveKeys.from_files(env("CFE_CURVE_SECRET"), env("CFE_CURVE_SERVER"))
        control = ControlClient(env("CFE_CURVE_CONTROL"), curve=keys)
        self.assertEqual(control.status()["ok"], True)
        with Subscriber(env("CFE_CURVE_OUTPUT"), topics=["score"], curve=keys) as sub, \
                Producer(env("CFE_CURVE_INPUT"), mode="push", curve=keys) as producer:
            time.sleep(0.3)
            producer.send_pred("py-curve", {"xgb": 0.8})
            got = collect(sub, lambda ms: any(m.id == "py-curve" for m in ms))
            self.assertTrue(any(m.id == "py-curve" for m in got))
        stranger = CurveKeys.from_files(env("CFE_CURVE_STRANGER"), env("CFE_CURVE_SERVER"))
        with self.assertRaises(DaemonUnavailable):
            ControlClient(env("CFE_CURVE_CONTROL"), curve=stranger, timeout=1.5).status()


if __name__ == "__main__":
    unittest.main()
