"""Does an LSTM's gating keep what matters across long IMDB reviews where a vanilla RNN loses it?"""

__version__ = "0.1.0"
