"""The shipped weights: offline loading, determinism, and the `generate` command end to end."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from samg_video import cli, media
from samg_video.guidance.spec import parse_spec
from samg_video.cards import card
from samg_video.demo import load_pipeline
from samg_video.demo.pipeline import DEFAULT_MODEL_DIR, scheduler_from_config
from samg_video.pipelines import apply


@pytest.fixture(scope="module")
def pipe():
    os.environ["HF_HUB_OFFLINE"] = "1"
    return load_pipeline()


def test_weights_load_offline(pipe):
    assert sum(p.numel() for p in pipe.unet.parameters()) > 100_000
    assert pipe.text_encoder.config.vocab_size == len(pipe.tokenizer.get_vocab())


def test_same_seed_same_clip(pipe):
    def run(seed):
        with apply(pipe, card("demo")["recommended"]):
            return pipe("a green square moving up", num_inference_steps=8, guidance_scale=2.0,
                        generator=torch.Generator().manual_seed(seed)).frames[0]
    a, b, c = run(0), run(0), run(1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == (8, 32, 32, 3) and 0 <= a.min() and a.max() <= 1


def test_missing_weights_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="diffusion_pytorch_model.safetensors is missing; reinstall samg-video"):
        load_pipeline(tmp_path)


def test_scheduler_comes_from_its_config(pipe):
    folder = DEFAULT_MODEL_DIR / "scheduler"
    assert type(pipe.scheduler).__name__ == json.loads((folder / "scheduler_config.json").read_text())["_class_name"]
    other = scheduler_from_config(folder, "DPMSolverMultistepScheduler", timestep_spacing="trailing")
    assert type(other).__name__ == "DPMSolverMultistepScheduler" and other.config.timestep_spacing == "trailing"
    assert other.config.prediction_type == pipe.scheduler.config.prediction_type
    assert torch.equal(other.alphas_cumprod, pipe.scheduler.alphas_cumprod)  # same noise schedule, other solver
    with pytest.raises(ValueError, match="Unknown scheduler 'Nope'.*DDIMScheduler"):
        scheduler_from_config(folder, "Nope")


@pytest.mark.parametrize("out,expect", [("clip.mp4", "clip.mp4"), ("clip.gif", "clip.gif"), ("frames", "frames")])
def test_generate_cli(tmp_path, out, expect, capsys):
    rc = cli.main(["generate", "--prompt", "a red circle moving left", "--out", str(tmp_path / out),
                   "--steps", "5", "--upscale", "2", "--save-scale-field"])
    assert rc == 0
    clip = media.read_video(tmp_path / expect)
    assert clip.shape == (8, 64, 64, 3)
    field_out = tmp_path / ({"frames": "frames_field"}.get(out) or out.replace(".", "_field."))
    assert media.read_video(field_out).shape[0] == 8
    assert "prompt check: color" in capsys.readouterr().out


def test_generate_cli_methods_and_options(tmp_path, capsys):
    rc = cli.main(["generate", "--prompt", "a blue triangle standing still", "--out", str(tmp_path / "a.gif"),
                   "--method", "apg", "--scale", "4", "--set", "eta=0.5", "--steps", "4", "--frames", "6",
                   "--upscale", "1"])
    assert rc == 0 and media.read_video(tmp_path / "a.gif").shape == (6, 32, 32, 3)
    assert "\n  eta: 0.5\n" in capsys.readouterr().out  # the settings as name: value lines


@pytest.mark.parametrize("argv,match", [
    (["--prompt", "a red dog moving left"], "knows only: a, an, and, blue"),
    (["--prompt", "a red circle moving left", "--method", "foo"], "Unknown guidance method 'foo'"),
    (["--prompt", "a red circle moving left", "--w-min", "9", "--w-max", "2"], "w_min"),
    (["--prompt", "a red circle moving left", "--method", "cfg", "--save-scale-field"], "scale field"),
    (["--prompt", "a red circle moving left", "--model", "sora"], "Unknown model 'sora'; available"),
])
def test_generate_cli_errors(tmp_path, argv, match, capsys):
    rc = cli.main(["generate", "--out", str(tmp_path / "x.mp4"), *argv])
    assert rc == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_compare_cli(tmp_path, capsys):
    import json

    rc = cli.main(["compare", "--prompt", "a red circle moving left", "--methods", "cfg:5", "samg:3-9",
                   "samg:3-9,temporal_sigma=1", "configs/guidance/rescale.yaml", "--steps", "4", "--upscale", "2",
                   "--out", str(tmp_path / "cmp.gif"), "--json", str(tmp_path / "cmp.json")])
    assert rc == 0
    grid = media.read_video(tmp_path / "cmp.gif")
    assert grid.shape[0] == 8 and grid.shape[2] > 4 * 64  # four labelled columns side by side
    rows = json.loads((tmp_path / "cmp.json").read_text())
    assert [r["method"] for r in rows] == ["cfg 5", "samg 3-9", "samg 3-9 temporal_sigma=1", "rescale 7.5"]
    assert rows[2]["config"]["temporal_sigma"] == 1.0
    assert all("warp_error" in r and "prompt_correct" in r for r in rows)


@pytest.mark.parametrize("spec,match", [("samg:5", "W_MIN-W_MAX"), ("cfg:7,eta", "KEY=VALUE"), ("pagx:3", "Unknown")])
def test_compare_bad_method_spec(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_spec(spec)


def test_unet_couples_frames_and_keeps_shapes():
    """Temporal convs and attention couple the frames: changing the first frame changes the
    others' outputs; the output has the input's shape."""
    from samg_video.demo.model import TinyVideoUNet

    torch.manual_seed(0)
    unet = TinyVideoUNet(channels=16, mult=2)
    for p in unet.parameters():  # zero-initialised output projections would hide the coupling
        p.data.normal_(0, 0.1)
    x, text = torch.randn(1, 3, 4, 8, 8), torch.randn(1, 16, 64)
    with torch.no_grad():
        out = unet(x, 10, text, return_dict=False)[0]
        assert out.shape == x.shape
        x2 = x.clone()
        x2[:, :, 0] += 1
        changed = (unet(x2, 10, text, return_dict=False)[0] - out).abs().amax(dim=(0, 1, 3, 4))
    assert (changed[1:] > 1e-5).all()  # float noise is ~1e-7


def test_shipped_weights_give_the_recorded_outputs(pipe):
    """The shipped weights, loaded by the current code, reproduce outputs recorded with the
    weights when they were released (tests/data/shipped_v9_outputs.npz): the U-Net's
    prediction on fixed noise for two prompts, and two 10-step CFG 2 clips."""
    ref = np.load(Path(__file__).parent / "data" / "shipped_v9_outputs.npz")
    x = torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(int(ref["unet_input_seed"])))
    states, mask = pipe.encode_prompt(["a red circle moving left",
                                       "a blue square moving up and a green triangle standing still"])
    with torch.no_grad():
        v = pipe.unet(x, torch.tensor([700, 250]), states, mask).sample.numpy()
    assert np.abs(v - ref["unet_out"]).max() < 1e-4
    clips = pipe(["a yellow triangle moving right", "a magenta circle moving down"], num_inference_steps=10,
                 guidance_scale=2.0, generator=torch.Generator().manual_seed(7)).frames
    assert np.abs(clips - ref["clips"]).max() < 1e-3


def test_shift_frames_moves_each_frame_by_its_offset():
    """Integer offsets move cells exactly (checked against slicing, zeros shifted in); a half-cell
    offset gives the bilinear mean of the two neighbours; zero offsets change nothing."""
    from samg_video.demo.model import shift_frames

    torch.manual_seed(0)
    x = torch.randn(3, 2, 6, 7)
    out = shift_frames(x, torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, -1.0]]))
    assert torch.allclose(out[0], x[0], atol=1e-5)
    want = torch.zeros_like(x)
    want[1, :, :, :-2] = x[1, :, :, 2:]  # out[y, x] = x[y, x + 2]
    want[2, :, 1:] = x[2, :, :-1]  # out[y, x] = x[y - 1, x]
    assert torch.allclose(out[1:], want[1:], atol=1e-5)
    half = shift_frames(x[:1], torch.tensor([[0.5, 0.0]]))
    assert torch.allclose(half[0, :, :, :-1], (x[0, :, :, :-1] + x[0, :, :, 1:]) / 2, atol=1e-5)


def test_moving_frame_makes_a_moving_object_stand_still():
    """A blob translating by 2 cells per frame: a temporal mean taken in the frame moving at its velocity
    returns every frame unchanged (the object is at one cell in all shifted frames); in the fixed frame
    the same mean smears it. frame_offsets is v (f - (F - 1) / 2) / stride."""
    from samg_video.demo.model import frame_offsets, in_moving_frame

    frames, size = 4, 16
    clip = torch.zeros(frames, 1, size, size)
    for f in range(frames):
        clip[f, 0, 6:9, 2 + 2 * f:5 + 2 * f] = 1.0  # moves right, 2 cells per frame
    velocity = torch.tensor([[4.0, 0.0]])  # pixels per frame at stride 2 -> 2 cells per frame
    offsets = frame_offsets(velocity, frames, stride=2)
    assert torch.allclose(offsets[:, 0], torch.tensor([-3.0, -1.0, 1.0, 3.0])) and (offsets[:, 1] == 0).all()

    def mean(z):
        return z.mean(0, keepdim=True).expand_as(z)

    assert torch.allclose(in_moving_frame(mean, clip, offsets), clip, atol=1e-5)
    assert (mean(clip) - clip).abs().max() > 0.5
    assert torch.equal(in_moving_frame(mean, clip, None), mean(clip))


def test_velocity_head_starts_at_rest_and_reads_the_prompt():
    """The velocity head starts at v = 0 for every prompt (the moving frame is the fixed one:
    zero offsets change nothing); trained, it gives each prompt its own velocity within
    max_speed, and that velocity changes the output; the output's gradient reaches it."""
    from samg_video.demo.model import TinyVideoUNet

    torch.manual_seed(0)
    unet = TinyVideoUNet(channels=16, mult=2, slots=2)
    x, text, mask = torch.randn(2, 3, 4, 16, 16), torch.randn(2, 16, 64), torch.ones(2, 16)
    mask[:, 8:] = 0  # one object per prompt
    assert torch.equal(unet.slot_velocities(text, mask == 0), torch.zeros(2, 2, 2))
    with torch.no_grad():
        for p in unet.parameters():  # zero-initialised projections would hide the temporal branches
            torch.nn.init.normal_(p, std=0.1)
        torch.nn.init.zeros_(unet.velocity_head[2].weight)
        torch.nn.init.zeros_(unet.velocity_head[2].bias)
        base = unet(x, 300, text, mask).sample
        torch.nn.init.normal_(unet.velocity_head[2].weight, std=0.5)
        v = unet.slot_velocities(text, mask == 0)[:, 0]
        assert (v[0] - v[1]).abs().max() > 1e-2 and v.abs().max() <= unet.config.max_speed
        assert (unet(x, 300, text, mask).sample - base).abs().max() > 1e-3
    unet(x, 300, text, mask).sample.square().mean().backward()
    assert unet.velocity_head[2].weight.grad.abs().sum() > 0


def test_frame_attention_sees_its_own_frame_only():
    """Frame attention starts as the identity (zero-init output); once trained each frame's
    output depends on the other cells of that frame but not on other frames."""
    from samg_video.demo.model import FrameAttention

    torch.manual_seed(0)
    attn = FrameAttention(32)
    cells = torch.randn(4, 32, 8, 8)  # (B*F, C, H, W) at the coarse level
    with torch.no_grad():
        assert torch.equal(attn(cells), cells)
        torch.nn.init.normal_(attn.attn.out_proj.weight, std=0.1)
        out = attn(cells)
        moved = cells.clone()
        moved[2, :, 0, 0] += 1.0  # one cell of frame 2
        diff = (attn(moved) - out).abs().amax(dim=(1, 2, 3))
        assert diff[2] > 1e-3 and torch.all(diff[[0, 1, 3]] == 0)
        assert (attn(moved)[2, :, 7, 7] - out[2, :, 7, 7]).abs().max() > 1e-4  # a far cell sees it


def test_flush_denormals_is_scoped():
    """Inside the block a denormal result is flushed to zero; after it, torch's default is back."""
    from samg_video.demo.pipeline import flush_denormals

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals")
    tiny = torch.tensor([1e-39], dtype=torch.float32)  # a denormal float32
    assert (tiny * 1.0).item() != 0.0
    with flush_denormals():
        assert (tiny * 1.0).item() == 0.0
    assert (tiny * 1.0).item() != 0.0


def test_shipped_weights_match_their_recorded_version():
    import hashlib

    record = json.loads((DEFAULT_MODEL_DIR / "training.json").read_text())
    assert record["version"] == card("demo")["version"]
    for name, digest in record["sha256"].items():
        assert hashlib.sha256((DEFAULT_MODEL_DIR / name).read_bytes()).hexdigest() == digest, name


def test_one_object_slot_encoding_is_the_whole_prompt_encoding(pipe):
    """With one slot the encoding is the whole prompt's; with two, a one-object prompt's states
    equal the whole prompt's (the text encoder is causal, padding masked), a two-object prompt
    puts each phrase in its own slot, encoded without the other, and three objects are refused."""
    from samg_video.demo.model import encode_slots

    prompt = "a magenta triangle standing still"
    states, mask = encode_slots(pipe.text_encoder, pipe.tokenizer, [prompt], slots=2)
    tok = pipe.tokenizer([prompt], padding="max_length", max_length=16, return_tensors="pt")
    whole = pipe.text_encoder(input_ids=tok.input_ids, attention_mask=tok.attention_mask).last_hidden_state
    real = tok.attention_mask[0].bool()
    assert torch.equal(mask[0].bool(), real) and torch.allclose(states[0, real], whole[0, real], atol=1e-6)
    one, one_mask = encode_slots(pipe.text_encoder, pipe.tokenizer, [prompt], slots=1)
    assert torch.equal(one_mask, tok.attention_mask) and torch.allclose(one[0, real], whole[0, real], atol=1e-6)
    states2, mask2 = encode_slots(pipe.text_encoder, pipe.tokenizer, [prompt + " and a red circle moving left"], 2)
    alone, _ = encode_slots(pipe.text_encoder, pipe.tokenizer, ["a red circle moving left"], 2)
    n = int(mask2[0, 8:].sum())
    assert n == 7 and torch.allclose(states2[0, 8:8 + n], alone[0, :n], atol=1e-6)
    with pytest.raises(ValueError, match="at most 2 objects"):
        encode_slots(pipe.text_encoder, pipe.tokenizer, ["a red circle moving left and a blue square moving up "
                                                         "and a green triangle standing still"], 2)


def test_two_moving_frames_blended_by_object_make_both_stand_still():
    """Two blobs moving in opposite directions: a temporal mean taken in each one's moving frame,
    blended by a mask of which blob a cell shows, returns every frame unchanged; one shared
    moving frame (either velocity) smears the other blob."""
    from samg_video.demo.model import frame_offsets, in_moving_frame, in_moving_frames

    frames, size = 4, 16
    clip = torch.zeros(frames, 1, size, size)
    owner = torch.zeros(frames, 2, size, size)
    for f in range(frames):
        clip[f, 0, 2:5, 2 + 2 * f:5 + 2 * f] = 1.0  # blob A moves right, 2 cells per frame
        clip[f, 0, 10:13, 11 - 2 * f:14 - 2 * f] = 0.5  # blob B moves left
        owner[f, 0, :8] = 1.0  # A lives in the top half, B in the bottom half
        owner[f, 1, 8:] = 1.0
    velocity = torch.tensor([[[4.0, 0.0], [-4.0, 0.0]]])  # (B, K, 2) px/frame at stride 2
    offsets = [frame_offsets(velocity[:, k], frames, stride=2) for k in range(2)]

    def mean(z):
        return z.mean(0, keepdim=True).expand_as(z)

    assert torch.allclose(in_moving_frames(mean, clip, offsets, owner), clip, atol=1e-5)
    for o in offsets:
        assert (in_moving_frame(mean, clip, o) - clip).abs().max() > 0.2


def test_two_slot_unet_with_one_object_is_the_one_slot_unet():
    """A two-slot U-Net given one-object text (the second slot empty) computes what the one-slot
    U-Net with the same weights computes: the slot assignment adds parameters only."""
    from samg_video.demo.model import TinyVideoUNet

    torch.manual_seed(0)
    one = TinyVideoUNet(channels=16, mult=2)
    for p in one.parameters():
        torch.nn.init.normal_(p, std=0.1)
    two = TinyVideoUNet(channels=16, mult=2, slots=2)
    missing = two.load_state_dict(one.state_dict(), strict=False).missing_keys
    assert missing and all(".assign." in k or k == "count_embed.weight" for k in missing)
    x, text, mask = torch.randn(2, 3, 4, 16, 16), torch.randn(2, 16, 64), torch.ones(2, 16)
    mask[:, 7:] = 0
    with torch.no_grad():
        assert torch.allclose(two(x, 300, text, mask).sample, one(x, 300, text, mask).sample, atol=1e-5)
        mask[:, 8:11] = 1  # a second object: the two-slot model now blends two moving frames
        assert (two(x, 300, text, mask).sample - one(x, 300, text, mask).sample).abs().max() > 1e-4


def test_only_the_count_embedding_tells_one_object_from_the_same_object_twice():
    """Each phrase is encoded alone, so "X and X" gives the U-Net the same tokens (twice), the same
    pooled text and the same moving frames as "X": without the object-count embedding the two
    prompts are indistinguishable, with it they are not."""
    from samg_video.demo.model import TinyVideoUNet, build_text_encoder, build_tokenizer, encode_slots

    torch.manual_seed(0)
    unet = TinyVideoUNet(channels=16, mult=2, slots=2)
    for name, p in unet.named_parameters():
        if name != "count_embed.weight":
            torch.nn.init.normal_(p, std=0.1)
    text, mask = encode_slots(build_text_encoder(), build_tokenizer(),
                              ["a red circle moving left", "a red circle moving left and a red circle moving left"], 2)
    x = torch.randn(1, 3, 4, 16, 16).repeat(2, 1, 1, 1, 1)
    with torch.no_grad():
        once, twice = unet(x, 300, text, mask).sample
        assert torch.allclose(once, twice, atol=1e-5)
        torch.nn.init.normal_(unet.count_embed.weight, std=0.5)
        once, twice = unet(x, 300, text, mask).sample
        assert (once - twice).abs().max() > 1e-3

