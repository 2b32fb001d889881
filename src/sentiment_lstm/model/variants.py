"""LSTM variants for gate ablations, each taking one piece out of the cell (Greff et al. 2017,
"LSTM: A Search Space Odyssey"; Johnson & Zhang 2016 for forget_only).

    vanilla            i, f, o = sigmoid, g = tanh, c = f*c + i*g, h = o * tanh(c)
    no_input_gate      i = 1
    no_forget_gate     f = 1 (the cell only adds)
    no_output_gate     o = 1
    coupled            i = 1 - f (no input-gate weights: write as much as is forgotten)
    forget_only        i = 1 and o = 1 (no input and no output gate)
    linear_input       g = the pre-activation itself, no tanh
    sigmoid_candidate  g = sigmoid(.), so the cell can only grow towards positive values
    linear_output      h = o * c, no output activation

A gate that is constant has no weights: its block is left out of weight_ih (nH, I),
weight_hh (nH, H) and the biases (nH,), the others keep nn.LSTM's order (i, f, g, o), so
parameter counts are honest.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    blocks: str  # the gate blocks that have weights, in nn.LSTM's order: a subset of "ifgo"
    coupled: bool = False  # i = 1 - f
    candidate: str = "tanh"  # g's activation: tanh | linear | sigmoid
    cell_tanh: bool = True  # h = o * tanh(c); False: h = o * c


VARIANTS = {
    "vanilla": Variant("ifgo"),
    "no_input_gate": Variant("fgo"),
    "no_forget_gate": Variant("igo"),
    "no_output_gate": Variant("ifg"),
    "coupled": Variant("fgo", coupled=True),
    "forget_only": Variant("fg"),
    "linear_input": Variant("ifgo", candidate="linear"),
    "sigmoid_candidate": Variant("ifgo", candidate="sigmoid"),
    "linear_output": Variant("ifgo", cell_tanh=False),
}


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown LSTM variant {name!r}; one of {', '.join(VARIANTS)}") from None
