from twisted.trial.unittest import SynchronousTestCase

from twchat.connection.flood import TokenBucket


class TokenBucketTests(SynchronousTestCase):
    def test_burst_then_rate(self) -> None:
        bucket = TokenBucket(rate=2, burst=3, now=0)
        self.assertEqual([bucket.take(0) for _ in range(3)], [0, 0, 0])
        self.assertAlmostEqual(bucket.take(0), 0.5)
        self.assertAlmostEqual(bucket.take(0.25), 0.25)
        self.assertEqual(bucket.take(0.5), 0)
        self.assertAlmostEqual(bucket.take(0.5), 0.5)

    def test_refills_no_higher_than_the_burst(self) -> None:
        bucket = TokenBucket(rate=2, burst=3, now=0)
        for _ in range(3):
            bucket.take(0)
        self.assertEqual([bucket.take(100) for _ in range(3)], [0, 0, 0])
        self.assertGreater(bucket.take(100), 0)

    def test_sustained_rate(self) -> None:
        bucket = TokenBucket(rate=2, burst=10, now=0)
        allowed = 0
        now = 0.0
        while now < 60:
            wait = bucket.take(now)
            if wait:
                now += wait
            else:
                allowed += 1
        # The burst, then two a second.
        self.assertIn(allowed, range(129, 132))
