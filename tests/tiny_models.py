"""Tiny random-weight causal LMs and a local word-level tokenizer (no downloads)."""
import torch

WORDS = [f"w{i}" for i in range(120)]
SPECIAL = ["<pad>", "<eos>", "<unk>"]


def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast
    vocab = {w: i for i, w in enumerate(SPECIAL + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>",
                                   unk_token="<unk>")


# Text a byte-level BPE learns its merges from: JSON, numbers, words.
BPE_CORPUS = ['{"name": "Ann", "age": 31, "ok": true, "tags": ["red", "green"]}',
              '[1, 2.5, -3, null, false]', "the quick brown fox 0123456789 yes no maybe"] * 20


def bpe_tokenizer(vocab_size=300):
    """A byte-level BPE trained here on BPE_CORPUS: it spells any text (every byte is a token),
    as LLM tokenizers do. Token 0 is <eos>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(BPE_CORPUS, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>")


def llama(vocab=len(SPECIAL) + len(WORDS), seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=0, eos_token_id=1, bos_token_id=None)
    return LlamaForCausalLM(cfg).eval()


def gpt2(vocab=len(SPECIAL) + len(WORDS), seed=0):
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=256,
                     pad_token_id=0, eos_token_id=1, bos_token_id=1)
    return GPT2LMHeadModel(cfg).eval()
