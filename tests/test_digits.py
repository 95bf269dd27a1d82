"""Numbers read from text are ASCII digits: ``str.isdigit`` also takes "²" (which int() refuses) and "٣" (which
int() reads as 3)."""

import pytest

from textclf.errors import TextclfError
from textclf.training.cluster import parse_tf_config


@pytest.mark.parametrize("port", ["²", "٣"])
def test_a_port_of_other_digits_is_refused_by_name(port):
    text = '{"cluster": {"worker": ["localhost:%s"]}, "task": {"type": "worker", "index": 0}}' % port
    with pytest.raises(TextclfError) as error:
        parse_tf_config(text)
    assert str(error.value).startswith(f'TF_CONFIG cluster.worker[0] must be a "host:port" address with a port from '
                                       f"1 to 65535, not 'localhost:{port}'")


def test_a_vectors_header_of_other_digits_is_read_as_a_vector_line(tmp_path):
    from textclf.model.embeddings import load_embeddings
    from textclf.text.tokenizer import Tokenizer

    tokenizer = Tokenizer(oov_token="<unk>")
    tokenizer.fit_on_texts(["good bad"])
    path = tmp_path / "vectors.txt"
    path.write_text("3 ²\ngood 0.5\n", encoding="utf-8")
    # Not a "count dimension" header (int("²") raised a traceback): a line for the word "3", not in the vocabulary.
    vectors = load_embeddings(path, tokenizer, tokenizer.vocabulary_size, 1)
    assert (vectors.found, vectors.total) == (1, 3)  # good of <unk>, good, bad.
    assert vectors.matrix[tokenizer.word_index["good"]].tolist() == [0.5]
