"""The R1-shaped benchmark model's tokenizer padding (`bench/random_model.py`): every id a random model of the full
vocabulary can sample decodes to text, and encoding is unchanged."""

import importlib.util
import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("random_model", ROOT / "bench" / "random_model.py")
random_model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(random_model)

TEXT = "<s>What is 12 + 30? <think>\nso 42</think> The answer is \\boxed{42}.</s>"


def small_tokenizer(path: Path) -> Tokenizer:
    """A byte-level BPE like `stagerl:tiny-random-r1`'s: special tokens in its vocabulary, `<think>` and `</think>`
    added after it."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(["What is 12 + 30? The answer is \\boxed{42}."] * 10, trainer=trainer)
    tok.add_tokens(["<think>", "</think>"])
    tok.save(str(path))
    return tok


def test_padded_tokenizer_decodes_every_id_and_encodes_as_before(tmp_path):
    path = tmp_path / "tokenizer.json"
    before = small_tokenizer(path).encode(TEXT)
    bpe_size = len(json.loads(path.read_text())["model"]["vocab"])
    added = random_model.pad_tokenizer_file(path, 600)

    padded = Tokenizer.from_file(str(path))
    assert padded.get_vocab_size(with_added_tokens=True) == 600
    assert added == 600 - 2 - bpe_size
    # The added tokens sit at the last ids, where `tokenizers` puts them on loading: no id is shared.
    assert [padded.token_to_id("<think>"), padded.token_to_id("</think>")] == [598, 599]
    tokens = [padded.id_to_token(i) for i in range(600)]
    assert None not in tokens and len(set(tokens)) == 600
    # Each filler decodes to printable text; text never encodes into a filler.
    fillers = range(bpe_size, 598)
    assert all(len(padded.decode([i])) == 3 and padded.decode([i]).isprintable() for i in fillers)
    after = padded.encode(TEXT)
    assert after.tokens == before.tokens
    assert padded.decode(after.ids, skip_special_tokens=False) == TEXT
