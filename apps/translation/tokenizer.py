"""Joint source+target BPE with Hugging Face ``tokenizers``, saved in the run directory.

Spaces are carried by a SentencePiece-style "▁" marker (Metaspace) and punctuation is split off
before BPE, so ``decode(encode(s)) == s`` for whitespace-normalised text whose characters were
seen in training: detokenisation is exact and sacreBLEU scores real text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from common.errors import UserError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = [PAD, UNK, BOS, EOS]  # ids 0..3, in this order
FILENAME = "tokenizer.json"


class BPETokenizer:
    """A thin wrapper exposing the ids the model needs and batch encode/decode."""

    def __init__(self, tok: Tokenizer):
        self.tok = tok
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = (tok.token_to_id(s) for s in SPECIALS)
        if None in (self.pad_id, self.unk_id, self.bos_id, self.eos_id):
            raise UserError("tokenizer.json lacks the special tokens <pad> <unk> <s> </s>; the run directory is damaged")

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (no BOS/EOS)."""
        return [e.ids for e in self.tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Detokenised text of each id list; special tokens are dropped."""
        return self.tok.decode_batch([list(map(int, x)) for x in ids], skip_special_tokens=True)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / FILENAME
        tmp = path.with_name(f".{FILENAME}.tmp")
        self.tok.save(str(tmp))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, folder: str | Path) -> "BPETokenizer":
        path = Path(folder) / FILENAME
        if not path.is_file():
            raise UserError(f"'{folder}' has no {FILENAME}; train the run first")
        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as exc:  # the tokenizers library raises a bare Exception on bad JSON
            raise UserError(f"'{path}' is corrupt ({str(exc).splitlines()[0]}); the run directory is damaged") from None


def new_tokenizer() -> Tokenizer:
    """An untrained BPE pipeline: Metaspace words, punctuation split off, "▁"-aware decoder."""
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
         pre_tokenizers.Punctuation(behavior="isolated")]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    return tok


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> BPETokenizer:
    """Learn a joint BPE vocabulary of ``vocab_size`` (specials included) from ``texts``."""
    tok = new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIALS, show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return BPETokenizer(tok)
