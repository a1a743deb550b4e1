"""Sizes of captured messages, the JS .length trap, scaling and the fixes as numbers."""

from imdiag.core.captures import Captured
from imdiag.core.sizing import (
    PathLimit,
    headroom,
    js_length_explanation,
    list_profile,
    nice_ceiling,
    plan_chunks,
    recommend,
    scale_message,
    size_of,
)
from imdiag.core.wire import Encoder, encode_json, event_frame


def sync(n: int, text: str = "你好，请问这个商品还有货吗？😀") -> dict:
    return {"type": "worker:data:sync", "payload": {"full": True, "conversations": [{"i": i, "t": text} for i in range(n)]}}


def test_size_of_matches_the_exact_frames():
    captured = Captured(0, sync(3), event="message", namespace="/worker")
    size = size_of(captured, namespace="/worker")
    for encoder in (Encoder.NODE, Encoder.PYTHON):
        data = encode_json(captured.message, encoder).encode()
        frame = event_frame(data, encoder=encoder, event="message", namespace="/worker")
        assert size.of(encoder).json_bytes == len(data)
        assert size.of(encoder).frame_bytes == len(frame)
    assert size.js_length == len(encode_json(captured.message, Encoder.NODE).encode("utf-16-le")) // 2
    assert size.of(Encoder.PYTHON).frame_bytes > size.of(Encoder.NODE).frame_bytes > size.js_length


def test_headroom():
    assert headroom(800_000, 1_000_000).bytes == 200_000 and headroom(800_000, 1_000_000).percent == 20.0
    over = headroom(1_313_024, 1_000_000)
    assert not over.fits and over.bytes == -313_024 and over.percent == -31.3
    assert headroom(1_000_000, 1_000_000).fits


def test_js_length_trap_is_explained_with_both_figures():
    why = js_length_explanation(849_069, 1_000_001, 999_977, 1_000_000, Encoder.NODE)
    assert why is not None and "849,069" in why and "1,000,001" in why and "3 bytes in UTF-8" in why
    assert js_length_explanation(500, 600, 590, 1_000_000, Encoder.NODE) is None
    assert js_length_explanation(2_000_000, 3_000_000, 2_999_990, 1_000_000, Encoder.NODE) is None


def test_scale_repeats_the_growing_lists_only():
    message = sync(40)
    assert scale_message(message, 1) is message
    scaled = scale_message(message, 3)
    assert len(scaled["payload"]["conversations"]) == 120 and scaled["payload"]["full"] is True
    assert len(message["payload"]["conversations"]) == 40  # the original is untouched
    heartbeat = {"type": "worker:heartbeat", "payload": {"ts": 1}}
    assert scale_message(heartbeat, 8) == heartbeat
    other = {"type": "x", "payload": {"rows": [1, 2], "tags": [1]}}
    assert scale_message(other, 2)["payload"] == {"rows": [1, 2, 1, 2], "tags": [1]}
    size_1 = size_of(Captured(0, message)).of(Encoder.NODE).json_bytes
    size_3 = size_of(Captured(0, scaled)).of(Encoder.NODE).json_bytes
    assert 2.9 * size_1 < size_3 < 3 * size_1


def test_chunks_fit_their_budget_and_cover_every_item():
    captured = Captured(0, sync(500))
    profile = list_profile(captured, encoder=Encoder.NODE, event="message", namespace="/")
    assert profile is not None and profile.key == "conversations" and len(profile.item_bytes) == 500
    whole = size_of(captured).of(Encoder.NODE).frame_bytes
    assert profile.fixed_bytes + sum(profile.item_bytes) + 499 == whole
    plan = plan_chunks(profile, 10_000)
    assert plan.fits and plan.largest_chunk <= 10_000 and plan.chunks >= -(-whole // 10_000)
    assert plan_chunks(profile, whole).chunks == 1
    assert not plan_chunks(profile, 50).fits


def test_recommendations_are_the_incidents_fixes_as_numbers():
    captured = Captured(3, sync(2000))
    profile = list_profile(captured, encoder=Encoder.NODE, event="message", namespace="/")
    frame = size_of(captured).of(Encoder.NODE).frame_bytes
    rec = recommend(1_000_000, frame, "message #3", profile)
    assert rec.min_limit == -(-frame * 5 // 4)  # 25% headroom
    assert rec.chunk_budget == 800_000
    assert rec.chunk_plan is not None and rec.chunk_plan.largest_chunk <= 800_000
    lines = rec.lines()
    assert "fix A" in lines[0] and f"{rec.min_limit:,}" in lines[0] and "fix B" in lines[1]
    # A master that lost bodies under its limit lowers the chunk budget, and says so.
    lost = recommend(1_000_000, frame, "message #3", profile, lost_under_limit=[300_000, 500_000])
    assert lost.chunk_budget == 299_999 and "raising the limit does not fix that" in lost.lines()[-1]


def test_nice_ceiling():
    assert nice_ceiling(1_641_280) == 1_700_000 and nice_ceiling(1_000_000) == 1_000_000 and nice_ceiling(99) == 99


def test_fixes_come_from_the_smallest_limit_on_the_path():
    captured = Captured(3, sync(13_000))  # about 825 KB: over both limits with the headroom
    profile = list_profile(captured, encoder=Encoder.NODE, event="message", namespace="/")
    frame = size_of(captured).of(Encoder.NODE).frame_bytes
    proxy = PathLimit(102_400, "the proxy's body limit (nginx: client_max_body_size)", "polling, a proxy (nginx/1.22.1)")
    rec = recommend(1_000_000, frame, "message #3", profile, path=[proxy])
    assert rec.ceiling == 102_400 and rec.chunk_budget == 81_920  # 102,400 / 1.25, not 1,000,000 / 1.25
    assert rec.chunk_plan is not None and rec.chunk_plan.largest_chunk <= 81_920
    a, b = rec.lines()[:2]
    # Fix A names each limit on the path that is too small, and by how much to raise it.
    assert (f"the proxy's body limit (nginx: client_max_body_size) >= {rec.min_limit:,} (now 102,400: "
            f"+{rec.min_limit - 102_400:,} B)") in a
    assert f"maxHttpBufferSize >= {rec.min_limit:,} (now 1,000,000: +{rec.min_limit - 1_000_000:,} B)" in a
    assert "at the path's limit 102,400 B (polling, a proxy (nginx/1.22.1); the master's is 1,000,000 B)" in b
    # A limit on the path above everything needed is not named; one known only to be too small is.
    assert "proxy" not in recommend(1_000_000, frame, "m", profile, path=[PathLimit(2_000_000, "proxy", "y")]).lines()[0]
    refused = PathLimit(frame - 1, "the proxy's body limit", "p", exact=False)  # it refused this message
    bound = recommend(1_000_000, frame, "m", profile, path=[refused])
    assert f"the proxy's body limit >= {rec.min_limit:,} (now under {frame:,} B)" in bound.lines()[0]
    assert bound.chunk_budget == (frame - 1) * 4 // 5  # under what the proxy is known to refuse


def test_fix_a_never_advises_lowering_a_limit():
    rec = recommend(1_000_000, 500_081, "message #2", None)
    assert rec.min_limit == 625_102
    assert rec.lines()[0].startswith("fix A (raise the limit): not needed: everything here fits the path's smallest "
                                     "limit 1,000,000 B with 25% headroom (it needs 625,102 B)")
    through = recommend(1_000_000, 500_081, "message #2", None, path=[PathLimit(102_400, "the proxy's body limit", "p")])
    assert "once the proxy's body limit >= 625,102 (now 102,400: +522,702 B) (e.g." in through.lines()[0]
    assert "maxHttpBufferSize" not in through.lines()[0]
