"""The course's notebooks ("Advanced Learning Algorithms", week 1 to 3), written as TensorFlow code
and run on logitnet with nothing but their import lines changed.

Each script below is a notebook's cells as the course writes them (`import tensorflow as tf`,
`from tensorflow.keras.layers import Dense`, ...). `run_as_logitnet` applies the README's import
rule to the import lines alone (it checks that every other line is left as it was) and executes
the result; the tests then check the numbers the notebook computed. What the course takes from its
own helper files (`lab_coffee_utils.load_coffee_data`, sklearn's `make_blobs`, the data loaders)
is given to the script as NumPy stand-ins, as the notebook's helper modules would be.

The side-by-side tests (marked compare) run scripts in Keras 3 form (no `tf.` names: TensorFlow
itself is not installed) once on real Keras (rule `tensorflow.keras` -> `keras`, torch backend)
and once on logitnet, and compare the numbers.
"""

from __future__ import annotations

import logging
import random
import re
import subprocess
import sys
import textwrap

import mpmath
import numpy as np
import pytest
from frameworks import need

import logitnet

# --- the import rule (README) ------------------------------------------------------------------
_IMPORT_LINE = re.compile(r"^\s*(import|from)\s")
_RULES = [  # applied in order, to import lines only
    (re.compile(r"^(\s*)import tensorflow as tf\s*$"), r"\1import logitnet.tf as tf"),
    (re.compile(r"^(\s*)from tensorflow\.keras\.(\S+) import "), r"\1from logitnet.\2 import "),
    (re.compile(r"^(\s*)from tensorflow\.keras import "), r"\1from logitnet import "),
    (re.compile(r"^(\s*)import keras\s*$"), r"\1import logitnet as keras"),
    (re.compile(r"^(\s*)from keras\.(\S+) import "), r"\1from logitnet.\2 import "),
    (re.compile(r"^(\s*)from keras import "), r"\1from logitnet import "),
]
_KERAS_RULES = [  # the same script on real Keras 3
    (re.compile(r"^(\s*)from tensorflow\.keras\.(\S+) import "), r"\1from keras.\2 import "),
    (re.compile(r"^(\s*)from tensorflow\.keras import "), r"\1from keras import "),
]


def _translate(source: str, rules: list) -> str:
    source = textwrap.dedent(source)
    out = []
    for line in source.splitlines():
        new = line
        if _IMPORT_LINE.match(line):
            for pattern, replacement in rules:
                new = pattern.sub(replacement, new)
        out.append(new)
    changed = [(a, b) for a, b in zip(source.splitlines(), out) if a != b]
    assert all(_IMPORT_LINE.match(a) for a, _ in changed), "the rule may change import lines only"
    left = [line for line in out if _IMPORT_LINE.match(line) and re.search(r"\btensorflow\b", line)]
    assert not left, f"imports of tensorflow that the rule does not cover: {left}"
    return "\n".join(out) + "\n"


def run_as_logitnet(source: str, **helpers) -> dict:
    """Run a TensorFlow notebook script with only its imports changed; its namespace afterwards.
    `helpers` are what the notebook imports from the course's own helper files."""
    namespace = dict(helpers)
    code = _translate(source, _RULES)
    exec(compile(code, "<course notebook on logitnet>", "exec"), namespace)  # noqa: S102 - our own script
    return namespace


def run_as_keras(source: str, **helpers) -> dict:
    """The same script (in Keras 3 form) on real Keras 3, torch backend."""
    need("keras")  # it loads SciPy's own OpenBLAS; logitnet's BLAS thread cap notices new libraries
    namespace = dict(helpers)
    code = _translate(source, _KERAS_RULES)
    exec(compile(code, "<course notebook on keras>", "exec"), namespace)  # noqa: S102 - our own script
    return namespace


def test_the_rule_changes_import_lines_only():
    script = """
        import tensorflow as tf
        from tensorflow.keras.layers import Dense, Input
        from tensorflow.keras import Sequential
        import keras
        from keras.losses import BinaryCrossentropy
        from keras import layers
        x = "import tensorflow as tf"  # not an import line: left alone
        def f():
            from tensorflow.keras.activations import relu
    """
    assert _translate(script, _RULES).splitlines() == [
        "",
        "import logitnet.tf as tf",
        "from logitnet.layers import Dense, Input",
        "from logitnet import Sequential",
        "import logitnet as keras",
        "from logitnet.losses import BinaryCrossentropy",
        "from logitnet import layers",
        'x = "import tensorflow as tf"  # not an import line: left alone',
        "def f():",
        "    from logitnet.activations import relu",
    ]
    assert _translate("from tensorflow.keras.layers import Dense\n", _KERAS_RULES) == "from keras.layers import Dense\n"


# --- state the notebooks change -------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _restore_global_state():
    """Notebooks set floatx, the global seed, NumPy's and Python's seeds and log levels: undo it."""
    floatx = logitnet.backend.floatx()
    np_state, py_state = np.random.get_state(), random.getstate()
    levels = {name: logging.getLogger(name).level for name in ("tensorflow", "logitnet")}
    yield
    logitnet.backend.set_floatx(floatx)
    logitnet.backend.set_global_seed(None)
    np.random.set_state(np_state)
    random.setstate(py_state)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


# --- the course's helper files, as NumPy stand-ins ----------------------------------------------
def load_coffee_data():
    """lab_coffee_utils.load_coffee_data, as the course writes it: 200 roasts (temperature,
    duration) and whether they are good."""
    rng = np.random.default_rng(2)
    X = rng.random(400).reshape(-1, 2)
    X[:, 1] = X[:, 1] * 4 + 11.5  # 12-15 min is best
    X[:, 0] = X[:, 0] * (285 - 150) + 150  # 350-500 F (175-260 C) is best
    Y = np.zeros(len(X))
    for i, (t, d) in enumerate(X):
        y = -3 / (260 - 175) * t + 21
        Y[i] = 1 if (175 < t < 260 and 12 < d < 15 and d <= y) else 0
    return X, Y.reshape(-1, 1)


def make_blobs(n_samples=100, centers=None, cluster_std=1.0, random_state=None, n_features=2):
    """sklearn.datasets.make_blobs for given centers (sklearn is not a dependency): X (n, d), y (n,)."""
    rng = np.random.default_rng(random_state)
    c = np.asarray(centers, dtype=np.float64)
    y = np.arange(n_samples) % len(c)
    rng.shuffle(y)
    return c[y] + rng.normal(0.0, cluster_std, (n_samples, c.shape[1])), y


def load_zeros_and_ones():
    """The week 1 assignment's data: 20x20 images of 0 and 1, X (n, 400) and y (n, 1). The bundled
    8x8 digits stand in, upsampled (nearest neighbour) to 20x20; the zeros first, as in the course."""
    x, digit = logitnet.datasets.load_digits()
    keep = np.flatnonzero(digit <= 1)
    keep = keep[np.argsort(digit[keep], kind="stable")]
    idx = np.arange(20) * 8 // 20
    images = x[keep].reshape(-1, 8, 8)[:, idx][:, :, idx]
    return images.reshape(-1, 400).astype(np.float64), digit[keep].reshape(-1, 1)


def load_digits():
    """The week 2 assignment's data: the bundled 8x8 digits, X (1797, 64), y (1797, 1)."""
    x, y = logitnet.datasets.load_digits()
    return x.astype(np.float64), y.reshape(-1, 1)


def np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


HELPERS = {"load_coffee_data": load_coffee_data, "make_blobs": make_blobs, "sigmoidnp": np_sigmoid}


def _summary(model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, *a, **k: lines.append(line))
    return "\n".join(lines)


def _param_counts(summary: str) -> tuple[int, int, int]:
    counts = [int(re.search(rf"{kind} params: ([\d,]+)", summary).group(1).replace(",", ""))
              for kind in ("Total", "Trainable", "Non-trainable")]
    return tuple(counts)


def _numpy(x) -> np.ndarray:
    """An array from logitnet's Tensor, a NumPy array or a torch tensor (Keras on torch)."""
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# --- (1) week 1, "Neurons and layers" ------------------------------------------------------------
NEURONS_AND_LAYERS = """
import numpy as np
import tensorflow as tf
from tensorflow.keras.layers import Dense, Input
from tensorflow.keras import Sequential
from tensorflow.keras.losses import MeanSquaredError, BinaryCrossentropy
from tensorflow.keras.activations import sigmoid
import logging
logging.getLogger("tensorflow").setLevel(logging.ERROR)
tf.autograph.set_verbosity(0)

# Neuron without activation - Regression/Linear Model
X_train = np.array([[1.0], [2.0]], dtype=np.float32)           #(size in 1000 square feet)
Y_train = np.array([[300.0], [500.0]], dtype=np.float32)       #(price in 1000s of dollars)

linear_layer = tf.keras.layers.Dense(units=1, activation = 'linear', )
weights_before_call = linear_layer.get_weights()
a1 = linear_layer(X_train[0].reshape(1,1))
print(a1)
a1_initial = a1.numpy()
w, b= linear_layer.get_weights()
print(f"w = {w}, b={b}")

set_w = np.array([[200]])
set_b = np.array([100])

# set_weights takes a list of numpy arrays
linear_layer.set_weights([set_w, set_b])
print(linear_layer.get_weights())

a1 = linear_layer(X_train[0].reshape(1,1))
print(a1)
alin = np.dot(set_w,X_train[0].reshape(1,1)) + set_b
print(alin)

prediction_tf = linear_layer(X_train)
prediction_np = np.dot( X_train, set_w) + set_b

# Neuron with Sigmoid activation
X_train = np.array([0., 1, 2, 3, 4, 5], dtype=np.float32).reshape(-1,1)  # 2-D Matrix
Y_train = np.array([0,  0, 0, 1, 1, 1], dtype=np.float32).reshape(-1,1)  # 2-D Matrix
pos = Y_train == 1
neg = Y_train == 0

model = Sequential(
    [
        tf.keras.layers.Dense(1, input_dim=1,  activation = 'sigmoid', name='L1')
    ]
)
model.summary()

logistic_layer = model.get_layer('L1')
w,b = logistic_layer.get_weights()
print(w,b)
print(w.shape,b.shape)

set_w = np.array([[2]])
set_b = np.array([-4.5])
# set_weights takes a list of numpy arrays
logistic_layer.set_weights([set_w, set_b])
print(logistic_layer.get_weights())

a1 = model.predict(X_train[0].reshape(1,1))
print(a1)
alog = sigmoidnp(np.dot(set_w,X_train[0].reshape(1,1)) + set_b)
print(alog)
all_predictions = model.predict(X_train)
"""


def test_week1_neurons_and_layers(capsys):
    ns = run_as_logitnet(NEURONS_AND_LAYERS, **HELPERS)
    # The linear layer: no weights before it is called, then w·x + b with the drawn w (b = 0).
    assert ns["weights_before_call"] == []
    assert ns["a1_initial"].shape == (1, 1) and ns["a1_initial"].dtype == np.float32
    # After set_weights([[[200]], [100]]): 200·1 + 100, as np.dot by hand, for one sample and two.
    assert ns["alin"].tolist() == [[300.0]]
    np.testing.assert_array_equal(ns["prediction_tf"].numpy(), ns["prediction_np"])
    assert ns["prediction_tf"].numpy().ravel().tolist() == [300.0, 500.0]
    # The logistic neuron: a 2-parameter model; set weights give sigmoid(2x − 4.5), as NumPy's.
    assert _param_counts(_summary(ns["model"])) == (2, 2, 0)
    assert ns["model"].get_layer("L1") is ns["logistic_layer"]
    assert ns["logistic_layer"].get_weights()[0].tolist() == [[2.0]]
    assert type(ns["a1"]) is np.ndarray  # predict returns a plain array, as Keras
    np.testing.assert_allclose(ns["a1"], ns["alog"], rtol=1e-6)
    x = np.arange(6.0).reshape(-1, 1)
    np.testing.assert_allclose(ns["all_predictions"], np_sigmoid(2 * x - 4.5), rtol=1e-6)
    # Thresholded at 0.5 it is the notebook's labels.
    assert ((ns["all_predictions"] >= 0.5) == ns["pos"]).all()
    assert ns["w"].shape == (1, 1) and ns["b"].shape == (1,)
    out = capsys.readouterr().out  # the notebook's printed summary
    assert "L1 (Dense)" in out and "(None, 1)" in out and "Total params: 2" in out


def test_week1_linear_layer_before_set_weights_is_w_times_x():
    ns = run_as_logitnet(NEURONS_AND_LAYERS.split("set_w = np.array([[200]])")[0], **HELPERS)
    w, b = ns["w"], ns["b"]
    assert b.tolist() == [0.0]  # Keras' default bias initializer: zeros
    np.testing.assert_allclose(ns["a1_initial"], w * 1.0 + b, rtol=1e-7)


# A notebook's cells run in any order, and the summary cell is often skipped: Keras builds a
# Sequential that starts with Input(...) (or whose first layer has input_dim=) at once, so its
# layers have weights and shapes before any summary, fit or predict.
UNBUILT_CELLS = {  # tf.keras code that is Keras 3 code too (compared below)
    "get_weights": """
        from tensorflow.keras.models import Sequential
        from tensorflow.keras.layers import Dense, Input
        model = Sequential([Input(shape=(2,)), Dense(3, activation='sigmoid', name = 'layer1'),
                            Dense(1, activation='sigmoid', name = 'layer2')])
        W1, b1 = model.get_layer("layer1").get_weights()
        result = W1.shape
    """,
    "set_weights": """
        import numpy as np
        from tensorflow.keras import Sequential
        from tensorflow.keras.layers import Dense
        model = Sequential([Dense(1, input_dim=1,  activation = 'sigmoid', name='L1')])
        model.get_layer('L1').set_weights([np.array([[2]]), np.array([-4.5])])
        result = model.get_layer('L1').get_weights()[0].shape
    """,
    "layer_output": """
        from tensorflow.keras.models import Sequential
        from tensorflow.keras.layers import Dense, InputLayer
        model = Sequential([InputLayer((400,)), Dense(25, 'sigmoid'), Dense(1, 'sigmoid')])
        [layer1, layer2] = model.layers
        result = tuple(layer1.output.shape)
    """,
}
UNBUILT_RESULTS = {"get_weights": (2, 3), "set_weights": (1, 1), "layer_output": (None, 25)}


@pytest.mark.parametrize("cell", sorted(UNBUILT_CELLS))
def test_layers_of_a_model_with_an_input_have_weights_at_once(cell):
    ns = run_as_logitnet(UNBUILT_CELLS[cell])
    assert ns["result"] == UNBUILT_RESULTS[cell]


# --- (2) week 1, "Coffee roasting in TensorFlow" -------------------------------------------------
COFFEE_ROASTING = """
import numpy as np
import tensorflow as tf
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense
import logging
logging.getLogger("tensorflow").setLevel(logging.ERROR)
tf.autograph.set_verbosity(0)

X,Y = load_coffee_data();
print(X.shape, Y.shape)

print(f"Temperature Max, Min pre normalization: {np.max(X[:,0]):0.2f}, {np.min(X[:,0]):0.2f}")
print(f"Duration    Max, Min pre normalization: {np.max(X[:,1]):0.2f}, {np.min(X[:,1]):0.2f}")
norm_l = tf.keras.layers.Normalization(axis=-1)
norm_l.adapt(X)  # learns mean, variance
Xn = norm_l(X)
print(f"Temperature Max, Min post normalization: {np.max(Xn[:,0]):0.2f}, {np.min(Xn[:,0]):0.2f}")
print(f"Duration    Max, Min post normalization: {np.max(Xn[:,1]):0.2f}, {np.min(Xn[:,1]):0.2f}")

Xt = np.tile(Xn,(TILES,1))
Yt= np.tile(Y,(TILES,1))
print(Xt.shape, Yt.shape)

tf.random.set_seed(1234)  # applied to achieve consistent results
model = Sequential(
    [
        tf.keras.Input(shape=(2,)),
        Dense(3, activation='sigmoid', name = 'layer1'),
        Dense(1, activation='sigmoid', name = 'layer2')
     ]
)
model.summary()

L1_num_params = 2 * 3 + 3   # W1 parameters  + b1 parameters
L2_num_params = 3 * 1 + 1   # W2 parameters  + b2 parameters
print("L1 params = ", L1_num_params, ", L2 params = ", L2_num_params  )

W1, b1 = model.get_layer("layer1").get_weights()
W2, b2 = model.get_layer("layer2").get_weights()
print(f"W1{W1.shape}:\\n", W1, f"\\nb1{b1.shape}:", b1)
print(f"W2{W2.shape}:\\n", W2, f"\\nb2{b2.shape}:", b2)

model.compile(
    loss = tf.keras.losses.BinaryCrossentropy(),
    optimizer = tf.keras.optimizers.Adam(learning_rate=0.01),
)

history = model.fit(
    Xt,Yt,
    epochs=EPOCHS,
)

W1_trained, b1_trained = model.get_layer("layer1").get_weights()
yhat_trained = (model.predict(Xn) >= 0.5).astype(int)

# The weights the notebook sets, from an earlier training run
W1 = np.array([
    [-8.94,  0.29, 12.89],
    [-0.17, -7.34, 10.79]] )
b1 = np.array([-9.87, -9.28,  1.01])
W2 = np.array([
    [-31.38],
    [-27.86],
    [-32.79]])
b2 = np.array([15.54])
model.get_layer("layer1").set_weights([W1,b1])
model.get_layer("layer2").set_weights([W2,b2])

X_test = np.array([
    [200,13.9],  # postive example
    [200,17]])   # negative example
X_testn = norm_l(X_test)
predictions = model.predict(X_testn)
print("predictions = \\n", predictions)

yhat = np.zeros_like(predictions)
for i in range(len(predictions)):
    if predictions[i] >= 0.5:
        yhat[i] = 1
    else:
        yhat[i] = 0
print(f"decisions = \\n{yhat}")

yhat = (predictions >= 0.5).astype(int)
print(f"decisions = \\n{yhat}")
"""


def _coffee(tiles=50, epochs=10):
    return run_as_logitnet(COFFEE_ROASTING, TILES=tiles, EPOCHS=epochs, **HELPERS)


def test_coffee_roasting_normalization_is_numpys():
    ns = _coffee(tiles=1, epochs=0)
    X, Xn = ns["X"], ns["Xn"]
    assert X.shape == (200, 2) and Xn.shape == (200, 2) and Xn.dtype == np.float32
    want = (X - X.mean(axis=0)) / X.std(axis=0)  # population variance, as Keras' adapt
    np.testing.assert_allclose(Xn.numpy(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(Xn.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(Xn.std(axis=0), 1, rtol=1e-5)
    norm_l = ns["norm_l"]
    mean, variance, count = norm_l.get_weights()
    np.testing.assert_allclose(mean, X.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(variance, X.var(axis=0), rtol=1e-6)
    assert int(count) == 200
    # The test roasts go through the same statistics.
    np.testing.assert_allclose(ns["X_testn"].numpy(), (ns["X_test"] - X.mean(axis=0)) / X.std(axis=0),
                               rtol=1e-5, atol=1e-6)
    # np.tile of the layer's output: the notebook's 1000 copies (here one).
    assert ns["Xt"].shape == (200, 2) and ns["Yt"].shape == (200, 1)


def test_coffee_roasting_set_weights_give_the_notebooks_decisions(capsys):
    ns = _coffee(tiles=1, epochs=0)
    assert _param_counts(_summary(ns["model"])) == (13, 13, 0)
    assert ns["L1_num_params"] + ns["L2_num_params"] == ns["model"].count_params()
    # The NumPy forward pass with the weights the notebook sets.
    a1 = np_sigmoid(ns["X_testn"].numpy().astype(np.float64) @ ns["W1"] + ns["b1"])
    want = np_sigmoid(a1 @ ns["W2"] + ns["b2"])
    np.testing.assert_allclose(ns["predictions"], want, rtol=1e-4, atol=1e-9)
    assert ns["predictions"][0, 0] > 0.9 and ns["predictions"][1, 0] < 1e-6  # the notebook: 9.63e-01, 3.03e-08
    assert ns["yhat"].tolist() == [[1], [0]]
    assert "layer1 (Dense)" in capsys.readouterr().out


def test_coffee_roasting_training_learns_the_roasting_rule():
    ns = _coffee(tiles=100, epochs=10)  # the notebook: 1000 copies; 100 keep the test fast
    losses = ns["history"].history["loss"]
    assert len(losses) == 10 and losses[-1] < 0.5 * losses[0] and losses[-1] < 0.2
    assert ns["W1_trained"].shape == (2, 3) and ns["b1_trained"].shape == (3,)
    Y = ns["Y"]
    accuracy = (ns["yhat_trained"] == Y).mean()
    majority = max(Y.mean(), 1 - Y.mean())  # about 0.8: always answering "bad roast"
    assert accuracy >= 0.93 and accuracy > majority + 0.1, (accuracy, majority)


# --- (3) week 1 assignment, "Neural networks for binary classification" -------------------------
# public_tests.py of the assignment, as the course writes it (its own imports included).
WEEK1_PUBLIC_TESTS = """
from tensorflow.keras.activations import sigmoid
from tensorflow.keras.layers import Dense

import numpy as np

def test_c1(target):
    assert len(target.layers) == 3, \\
        f"Wrong number of layers. Expected 3 but got {len(target.layers)}"
    assert target.input.shape.as_list() == [None, 400], \\
        f"Wrong input shape. Expected [None,  400] but got {target.input.shape.as_list()}"
    i = 0
    expected = [[Dense, [None, 25], sigmoid],
                [Dense, [None, 15], sigmoid],
                [Dense, [None, 1], sigmoid]]

    for layer in target.layers:
        assert type(layer) == expected[i][0], \\
            f"Wrong type in layer {i}. Expected {expected[i][0]} but got {type(layer)}"
        assert layer.output.shape.as_list() == expected[i][1], \\
            f"Wrong number of units in layer {i}. Expected {expected[i][1]} but got {layer.output.shape.as_list()}"
        assert layer.activation == expected[i][2], \\
            f"Wrong activation in layer {i}. Expected {expected[i][2]} but got {layer.activation}"
        i = i + 1

    print("\\033[92mAll tests passed!")
"""

WEEK1_ASSIGNMENT = """
import numpy as np
import tensorflow as tf
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense
import logging
logging.getLogger("tensorflow").setLevel(logging.ERROR)
tf.autograph.set_verbosity(0)

X, y = load_data()
print ('The shape of X is: ' + str(X.shape))
print ('The shape of y is: ' + str(y.shape))

MODEL_CELL
model.summary()

# UNIT TESTS
test_c1(model)

L1_num_params = 400 * 25 + 25  # W1 parameters  + b1 parameters
L2_num_params = 25 * 15 + 15   # W2 parameters  + b2 parameters
L3_num_params = 15 * 1 + 1     # W3 parameters  + b3 parameters
print("L1 params = ", L1_num_params, ", L2 params = ", L2_num_params, ",  L3 params = ",  L3_num_params )

[layer1, layer2, layer3] = model.layers

#### Examine Weights shapes
W1,b1 = layer1.get_weights()
W2,b2 = layer2.get_weights()
W3,b3 = layer3.get_weights()
print(f"W1 shape = {W1.shape}, b1 shape = {b1.shape}")
print(f"W2 shape = {W2.shape}, b2 shape = {b2.shape}")
print(f"W3 shape = {W3.shape}, b3 shape = {b3.shape}")

print(model.layers[2].weights)
layer3_weights = model.layers[2].weights

model.compile(
    loss=tf.keras.losses.BinaryCrossentropy(),
    optimizer=tf.keras.optimizers.Adam(0.001),
)

history = model.fit(
    X,y,
    epochs=20
)

prediction = model.predict(X[0].reshape(1,400))  # a zero
print(f" predicting a zero: {prediction}")
prediction_zero = prediction
prediction = model.predict(X[-1].reshape(1,400))  # a one
print(f" predicting a one:  {prediction}")

if prediction >= 0.5:
    yhat = 1
else:
    yhat = 0
print(f"prediction after threshold: {yhat}")

# The NumPy model of the assignment's section 2.5, on the trained weights
def my_dense(a_in, W, b, g):
    units = W.shape[1]
    a_out = np.zeros(units)
    for j in range(units):
        w = W[:,j]
        z = np.dot(w, a_in) + b[j]
        a_out[j] = g(z)
    return(a_out)

def my_sequential(x, W1, b1, W2, b2, W3, b3):
    a1 = my_dense(x,  W1, b1, sigmoid)
    a2 = my_dense(a1, W2, b2, sigmoid)
    a3 = my_dense(a2, W3, b3, sigmoid)
    return(a3)

W1_tmp,b1_tmp = layer1.get_weights()
W2_tmp,b2_tmp = layer2.get_weights()
W3_tmp,b3_tmp = layer3.get_weights()

prediction_np = my_sequential(X[0], W1_tmp, b1_tmp, W2_tmp, b2_tmp, W3_tmp, b3_tmp )
Yhat = (model.predict(X) >= 0.5).astype(int)
"""

MODEL_CELLS = {  # the assignment's model cell as written over the course's versions
    "Input": """model = Sequential(
    [
        tf.keras.Input(shape=(400,)),    #specify input size
        ### START CODE HERE ###
        Dense(25, activation='sigmoid'),
        Dense(15, activation='sigmoid'),
        Dense(1, activation='sigmoid')
        ### END CODE HERE ###
    ], name = "my_model"
)""",
    "InputLayer": """model = Sequential([tf.keras.InputLayer((400,)), Dense(25, 'sigmoid'), Dense(15,'sigmoid'),
                    Dense(1,'sigmoid')], name="my_model")""",
}


@pytest.mark.parametrize("cell", sorted(MODEL_CELLS))
def test_week1_assignment_passes_its_unit_tests_and_learns(cell, capsys):
    tests = run_as_logitnet(WEEK1_PUBLIC_TESTS)
    script = WEEK1_ASSIGNMENT.replace("MODEL_CELL", MODEL_CELLS[cell])
    ns = run_as_logitnet(script, load_data=load_zeros_and_ones, sigmoid=np_sigmoid, test_c1=tests["test_c1"])
    assert "All tests passed!" in capsys.readouterr().out
    model = ns["model"]
    assert model.name == "my_model" and len(model.layers) == 3
    assert model.input.shape.as_list() == [None, 400]
    assert [layer.output.shape.as_list() for layer in model.layers] == [[None, 25], [None, 15], [None, 1]]
    # The parameter counts the notebook works out by hand are the summary's.
    total = ns["L1_num_params"] + ns["L2_num_params"] + ns["L3_num_params"]
    assert _param_counts(_summary(model)) == (total, total, 0) == (10_431, 10_431, 0)
    assert [layer.count_params() for layer in model.layers] == [10_025, 390, 16]
    assert (ns["W1"].shape, ns["b1"].shape, ns["W2"].shape, ns["b2"].shape, ns["W3"].shape, ns["b3"].shape) \
        == ((400, 25), (25,), (25, 15), (15,), (15, 1), (1,))
    assert [w.shape for w in ns["layer3_weights"]] == [(15, 1), (1,)]
    # Trained: a zero and a one told apart, and the whole set nearly all right.
    y = ns["y"]
    assert y[0, 0] == 0 and y[-1, 0] == 1
    assert ns["prediction_zero"].shape == (1, 1) and ns["prediction_zero"][0, 0] < 0.5
    assert ns["yhat"] == 1
    assert (ns["Yhat"] == y).mean() >= 0.98
    # The assignment's NumPy forward pass on the trained weights is the model's prediction.
    np.testing.assert_allclose(ns["prediction_np"], ns["prediction_zero"][0], rtol=1e-5)
    assert ns["history"].history["loss"][-1] < ns["history"].history["loss"][0]


# --- (4) week 2, "Softmax" and "Multi-class classification" ------------------------------------
SOFTMAX_LAB = """
import numpy as np
import tensorflow as tf
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense
import logging
logging.getLogger("tensorflow").setLevel(logging.ERROR)
tf.autograph.set_verbosity(0)

def my_softmax(z):
    ez = np.exp(z)              #element-wise exponenial
    sm = ez/np.sum(ez)
    return(sm)

# make  dataset for example
centers = [[-5, 2], [-2, -2], [1, 2], [5, -2]]
X_train, y_train = make_blobs(n_samples=2000, centers=centers, cluster_std=1.0,random_state=30)

tf.random.set_seed(1234)
model = Sequential(
    [
        Dense(25, activation = 'relu'),
        Dense(15, activation = 'relu'),
        Dense(4, activation = 'softmax')    # < softmax activation here
    ]
)
model.compile(
    loss=tf.keras.losses.SparseCategoricalCrossentropy(),
    optimizer=tf.keras.optimizers.Adam(0.001),
)

model.fit(
    X_train,y_train,
    epochs=10
)

p_nonpreferred = model.predict(X_train)
print(p_nonpreferred [:2])
print("largest value", np.max(p_nonpreferred), "smallest value", np.min(p_nonpreferred))

preferred_model = Sequential(
    [
        Dense(25, activation = 'relu'),
        Dense(15, activation = 'relu'),
        Dense(4, activation = 'linear')   #<-- Note
    ]
)
preferred_model.compile(
    loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),  #<-- Note
    optimizer=tf.keras.optimizers.Adam(0.001),
)

preferred_model.fit(
    X_train,y_train,
    epochs=10
)

p_preferred = preferred_model.predict(X_train)
print(f"two example output vectors:\\n {p_preferred[:2]}")
print("largest value", np.max(p_preferred), "smallest value", np.min(p_preferred))

sm_preferred = tf.nn.softmax(p_preferred).numpy()
print(f"two example output vectors:\\n {sm_preferred[:2]}")
print("largest value", np.max(sm_preferred), "smallest value", np.min(sm_preferred))

for i in range(5):
    print( f"{p_preferred[i]}, category: {np.argmax(p_preferred[i])}")
categories = np.argmax(p_preferred, axis=1)
categories_nonpreferred = np.argmax(p_nonpreferred, axis=1)
"""


def _exact_mean_ce(logits: np.ndarray, labels: np.ndarray) -> float:
    """mean of −log softmax(z)[y] over the rows, from the float logits, in 50-digit arithmetic."""
    with mpmath.workdps(50):
        total = mpmath.mpf(0)
        for row, label in zip(logits.astype(np.float64), labels):
            lse = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v))) for v in row))
            total += lse - mpmath.mpf(float(row[label]))
        return float(total / len(labels))


def test_week2_softmax_output_and_logits_output_learn_the_blobs_alike():
    ns = run_as_logitnet(SOFTMAX_LAB, **HELPERS)
    X, y = ns["X_train"], ns["y_train"]
    p_non, logits, sm = ns["p_nonpreferred"], ns["p_preferred"], ns["sm_preferred"]
    # The softmax model outputs probabilities; the preferred one logits, which tf.nn.softmax maps
    # to the same kind of rows (summing to 1), exactly as NumPy's softmax in float64.
    assert p_non.shape == logits.shape == sm.shape == (2000, 4)
    assert p_non.min() >= 0 and p_non.max() <= 1
    np.testing.assert_allclose(p_non.sum(axis=1), 1, rtol=1e-6)
    assert logits.min() < 0 or logits.max() > 1  # logits, not probabilities
    assert type(sm) is np.ndarray
    z = logits.astype(np.float64)
    want = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(sm, want / want.sum(axis=1, keepdims=True), rtol=1e-6, atol=1e-12)
    assert np.array_equal(np.argmax(sm, axis=1), ns["categories"])
    # The notebook's my_softmax agrees with tf.nn.softmax on a row.
    np.testing.assert_allclose(ns["my_softmax"](z[0]), sm[0], rtol=1e-6)
    # Both reach the same accuracy on the four blobs.
    acc_non = (ns["categories_nonpreferred"] == y).mean()
    acc_pref = (ns["categories"] == y).mean()
    assert acc_non >= 0.95 and acc_pref >= 0.95 and abs(acc_non - acc_pref) <= 0.02, (acc_non, acc_pref)
    # The preferred model's loss is the exact mean cross-entropy of its logits; so is the softmax
    # model's (logitnet takes it from the logits too, whatever from_logits says).
    for model, z_model in ((ns["preferred_model"], logits),
                           (ns["model"], ns["model"].predict_logits(X))):
        assert model.evaluate(X, y, verbose=0) == pytest.approx(_exact_mean_ce(z_model, y), rel=1e-5)


MULTICLASS_LAB = """
import numpy as np
import tensorflow as tf
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense
import logging
logging.getLogger("tensorflow").setLevel(logging.ERROR)
tf.autograph.set_verbosity(0)

# make 4-class dataset for classification
classes = 4
m = 100
centers = [[-5, 2], [-2, -2], [1, 2], [5, -2]]
std = 1.0
X_train, y_train = make_blobs(n_samples=m, centers=centers, cluster_std=std,random_state=30)

print(f"unique classes {np.unique(y_train)}")
print(f"class representation {y_train[:10]}")
print(f"shape of X_train: {X_train.shape}, shape of y_train: {y_train.shape}")

tf.random.set_seed(1234)  # applied to achieve consistent results
model = Sequential(
    [
        Dense(2, activation = 'relu',   name = "L1"),
        Dense(4, activation = 'linear', name = "L2")
    ]
)
model.compile(
    loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    optimizer=tf.keras.optimizers.Adam(0.01),
)

model.fit(
    X_train,y_train,
    epochs=200
)

# gather the trained parameters from the first layer
l1 = model.get_layer("L1")
W1,b1 = l1.get_weights()
l2 = model.get_layer("L2")
W2, b2 = l2.get_weights()

# what the notebook's plots compute: the layer 1 outputs by hand, then the logits
Xl2 = np.maximum(0, np.dot(X_train,W1) + b1)
logits_by_hand = np.dot(Xl2, W2) + b2
logits = model.predict(X_train)
"""


def test_week2_multiclass_layers_by_hand_are_the_models_predictions():
    ns = run_as_logitnet(MULTICLASS_LAB, **HELPERS)
    assert ns["W1"].shape == (2, 2) and ns["b1"].shape == (2,) and ns["W2"].shape == (2, 4)
    np.testing.assert_allclose(ns["logits"], ns["logits_by_hand"], rtol=1e-5, atol=1e-5)
    # Two ReLU units: the notebook shows them splitting the four blobs; most points come out right.
    assert (np.argmax(ns["logits"], axis=1) == ns["y_train"]).mean() >= 0.9


def test_week2_sparse_softmax_cross_entropy_of_a_confident_prediction():
    ns = run_as_logitnet("""
        import numpy as np
        import tensorflow as tf

        logits = tf.constant([[0.0, -69.0, -80.0], [3.0, 1.0, 0.5], [20.0, 20.0, -5.0]])
        labels = tf.constant([0, 2, 1])
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits).numpy()
        naive = -np.log(tf.nn.softmax(logits).numpy()[np.arange(3), labels.numpy()])
        onehot = tf.constant(np.eye(3)[[0, 2, 1]], dtype=tf.float32)
        dense_loss = tf.nn.softmax_cross_entropy_with_logits(labels=onehot, logits=logits).numpy()
        logits64 = tf.convert_to_tensor(logits.numpy().astype(np.float64))
        loss64 = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits64).numpy()
        # the binary case: a confident, correct logit of 80
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.constant([1.0, 0.0]),
                                                      logits=tf.constant([80.0, 80.0])).numpy()
    """)
    logits, labels, loss = ns["logits"].numpy(), ns["labels"].numpy(), ns["loss"]
    assert logits.dtype == np.float32 and labels.dtype == np.int32 and loss.shape == (3,)
    with mpmath.workdps(60):
        want = [float(mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v))) for v in row))
                      - mpmath.mpf(float(row[k]))) for row, k in zip(logits, labels)]
    # The confident row's loss is about e^-69 ≈ 1.0e-30; the naive −log(softmax) rounds it to 0.
    assert 0.9e-30 < want[0] < 1.1e-30 and ns["naive"][0] == 0.0
    np.testing.assert_allclose(loss, want, rtol=4 * np.finfo(np.float32).eps)
    np.testing.assert_allclose(ns["dense_loss"], want, rtol=4 * np.finfo(np.float32).eps)
    assert ns["logits64"].dtype == np.float64 and ns["loss64"].dtype == np.float64
    np.testing.assert_allclose(ns["loss64"], want, rtol=4 * np.finfo(np.float64).eps)
    with mpmath.workdps(60):
        want_bce = [float(mpmath.log1p(mpmath.exp(-80))), float(80 + mpmath.log1p(mpmath.exp(-80)))]
    assert 1.7e-35 < want_bce[0] < 1.9e-35  # e^-80; 1 − sigmoid(80) rounds to 0 in float32
    np.testing.assert_allclose(ns["bce"], want_bce, rtol=4 * np.finfo(np.float32).eps)


# --- (5) week 2 assignment, "Neural networks for handwritten digit recognition, multiclass" ------
WEEK2_PUBLIC_TESTS = """
import numpy as np
import tensorflow as tf
from tensorflow.keras.activations import relu,linear
from tensorflow.keras.layers import Dense

def test_my_softmax(target):
    z = np.array([1., 2., 3., 4.])
    a = target(z)
    atf = tf.nn.softmax(z)

    assert np.allclose(a, atf, atol=1e-10), f"Wrong values. Expected {atf}, got {a}"

    z = np.array([np.log(0.1)] * 10)
    a = target(z)
    expected = np.ones(10) / 10
    assert np.allclose(a, expected, atol=1e-10), f"Wrong values. Expected {expected}, got {a}"

    print("\\033[92m All tests passed.")

def test_model(target, classes, input_size):
    target.build(input_shape=(None,input_size))

    assert len(target.layers) == 3, \\
        f"Wrong number of layers. Expected 3 but got {len(target.layers)}"
    assert target.input.shape.as_list() == [None, input_size], \\
        f"Wrong input shape. Expected [None,  {input_size}] but got {target.input.shape.as_list()}"
    i = 0
    expected = [[Dense, [None, 25], relu],
                [Dense, [None, 15], relu],
                [Dense, [None, classes], linear]]

    for layer in target.layers:
        assert type(layer) == expected[i][0], \\
            f"Wrong type in layer {i}. Expected {expected[i][0]} but got {type(layer)}"
        assert layer.output.shape.as_list() == expected[i][1], \\
            f"Wrong number of units in layer {i}. Expected {expected[i][1]} but got {layer.output.shape.as_list()}"
        assert layer.activation == expected[i][2], \\
            f"Wrong activation in layer {i}. Expected {expected[i][2]} but got {layer.activation}"
        i = i + 1

    print("\\033[92mAll tests passed!")
"""

WEEK2_ASSIGNMENT = """
import numpy as np
import tensorflow as tf
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense
from tensorflow.keras.activations import linear, relu, sigmoid
import logging
logging.getLogger("tensorflow").setLevel(logging.ERROR)
tf.autograph.set_verbosity(0)
np.set_printoptions(precision=2)

def my_softmax(z):
    ### START CODE HERE ###
    N = len(z)
    a = np.zeros(N)
    ez_sum = 0
    for k in range(N):
        ez_sum += np.exp(z[k])
    for j in range(N):
        a[j] = np.exp(z[j])/ez_sum
    ### END CODE HERE ###
    return a

z = np.array([1., 2., 3., 4.])
a = my_softmax(z)
atf = tf.nn.softmax(z)
print(f"my_softmax(z):         {a}")
print(f"tensorflow softmax(z): {atf}")
test_my_softmax(my_softmax)

# load dataset
X, y = load_data()
print ('The shape of X is: ' + str(X.shape))
print ('The shape of y is: ' + str(y.shape))

tf.random.set_seed(1234) # for consistent results
model = Sequential(
    [
        ### START CODE HERE ###
        tf.keras.Input(shape=(64,)),
        Dense(25, activation='relu', name="L1"),
        Dense(15, activation='relu', name="L2"),
        Dense(10, activation='linear', name="L3"),
        ### END CODE HERE ###
    ], name = "my_model"
)
model.summary()

# BEGIN UNIT TEST
test_model(model, 10, 64)
# END UNIT TEST

[layer1, layer2, layer3] = model.layers
#### Examine Weights shapes
W1,b1 = layer1.get_weights()
W2,b2 = layer2.get_weights()
W3,b3 = layer3.get_weights()
print(f"W1 shape = {W1.shape}, b1 shape = {b1.shape}")
print(f"W2 shape = {W2.shape}, b2 shape = {b2.shape}")
print(f"W3 shape = {W3.shape}, b3 shape = {b3.shape}")

model.compile(
    loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    optimizer=tf.keras.optimizers.Adam(learning_rate=0.001),
)

history = model.fit(
    X,y,
    epochs=EPOCHS
)

W1_trained, b1_trained = model.get_layer("L1").get_weights()

image_of_two = X[TWO]

prediction = model.predict(image_of_two.reshape(1,64))  # prediction

print(f" predicting a Two: \\n{prediction}")
print(f" Largest Prediction index: {np.argmax(prediction)}")

prediction_p = tf.nn.softmax(prediction)

print(f" predicting a Two. Probability vector: \\n{prediction_p}")
print(f"Total of predictions: {np.sum(prediction_p):0.3f}")

yhat = np.argmax(prediction_p)

print(f"np.argmax(prediction_p): {yhat}")

# the notebook's last cell: how many of the training set the model gets wrong
pred = np.argmax(tf.nn.softmax(model.predict(X)).numpy(), axis=1)
wrong = np.sum(pred != y[:,0])
"""


def test_week2_assignment_passes_its_unit_tests_and_learns_the_digits(capsys):
    tests = run_as_logitnet(WEEK2_PUBLIC_TESTS)
    _, digit = load_digits()
    two = int(np.flatnonzero(digit[:, 0] == 2)[0])
    ns = run_as_logitnet(WEEK2_ASSIGNMENT, load_data=load_digits, EPOCHS=15, TWO=two,
                         test_model=tests["test_model"], test_my_softmax=tests["test_my_softmax"])
    out = capsys.readouterr().out
    assert "All tests passed." in out and "All tests passed!" in out
    # tf.nn.softmax of a float64 vector is float64 (the unit test wants 1e-10).
    assert ns["atf"].dtype == np.float64
    np.testing.assert_allclose(ns["atf"].numpy(), ns["a"], rtol=1e-15)
    model = ns["model"]
    assert _param_counts(_summary(model)) == (64 * 25 + 25 + 25 * 15 + 15 + 15 * 10 + 10,) * 2 + (0,) \
        == (2_175, 2_175, 0)
    # Trained: the weights moved, the loss fell, the two is a two, nearly all the set right.
    assert ns["W1_trained"].shape == (64, 25) and not np.array_equal(ns["W1_trained"], ns["W1"])
    loss = ns["history"].history["loss"]
    assert len(loss) == 15 and loss[-1] < 0.25 < loss[0]
    prediction, prediction_p = ns["prediction"], ns["prediction_p"]
    assert prediction.shape == (1, 10) and type(prediction) is np.ndarray
    np.testing.assert_allclose(prediction_p.numpy().sum(), 1, rtol=1e-6)
    assert ns["yhat"] == 2 == np.argmax(prediction)
    assert ns["wrong"] <= 0.05 * len(ns["X"])


# --- (6) week 3, "Advice for applying machine learning" ----------------------------------------
def gen_blobs():
    """assigment_utils.gen_blobs of the week 3 assignment: 6 classes, 800 points, spread 0.4."""
    classes, m, std = 6, 800, 0.4
    centers = np.array([[-1, 0], [1, 0], [0, 1], [0, -1], [-2, 1], [-2, -1]])
    X, y = make_blobs(n_samples=m, centers=centers, cluster_std=std, random_state=2, n_features=2)
    return X, y, centers, classes, std


def train_test_split(X, y, test_size=0.25, random_state=None):
    """sklearn.model_selection.train_test_split for two arrays (sklearn is not a dependency)."""
    order = np.random.default_rng(random_state).permutation(len(X))
    n_test = int(np.ceil(test_size * len(X)))
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]


WEEK3_PUBLIC_TESTS = """
import numpy as np
import tensorflow as tf
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense
from tensorflow.keras.activations import relu,linear
from tensorflow.keras.losses import SparseCategoricalCrossentropy
from tensorflow.keras.optimizers import Adam

def model_test(target, classes, input_size):
    target.build(input_shape=(None,input_size))
    expected_lr = 0.01

    assert len(target.layers) == 3, \\
        f"Wrong number of layers. Expected 3 but got {len(target.layers)}"
    assert target.input.shape.as_list() == [None, input_size], \\
        f"Wrong input shape. Expected [None,  {input_size}] but got {target.input.shape.as_list()}"
    i = 0
    expected = [[Dense, [None, 120], relu],
                [Dense, [None, 40], relu],
                [Dense, [None, classes], linear]]

    for layer in target.layers:
        assert type(layer) == expected[i][0], \\
            f"Wrong type in layer {i}. Expected {expected[i][0]} but got {type(layer)}"
        assert layer.output.shape.as_list() == expected[i][1], \\
            f"Wrong number of units in layer {i}. Expected {expected[i][1]} but got {layer.output.shape.as_list()}"
        assert layer.activation == expected[i][2], \\
            f"Wrong activation in layer {i}. Expected {expected[i][2]} but got {layer.activation}"
        assert layer.kernel_regularizer == None, "You must not specify any regularizer for any layer"
        i = i + 1

    assert type(target.loss)==SparseCategoricalCrossentropy, f"Wrong loss. Expected {SparseCategoricalCrossentropy}, but got {target.loss}"
    assert type(target.optimizer)==Adam, f"Wrong loss. Expected {Adam}, but got {target.optimizer}"
    lr = target.optimizer.learning_rate.numpy()
    assert np.isclose(lr, expected_lr, atol=1e-8), f"Wrong learning rate. Expected {expected_lr}, but got {lr}"
    assert target.loss.get_config()['from_logits'], f"Set from_logits=True in loss function"

    print("\\033[92mAll tests passed!")

def model_s_test(target, classes, input_size):
    target.build(input_shape=(None,input_size))
    expected_lr = 0.01

    assert len(target.layers) == 3, \\
        f"Wrong number of layers. Expected 3 but got {len(target.layers)}"
    assert target.input.shape.as_list() == [None, input_size], \\
        f"Wrong input shape. Expected [None,  {input_size}] but got {target.input.shape.as_list()}"
    i = 0
    expected = [[Dense, [None, 120], relu, (tf.keras.regularizers.l2, 0.1)],
                [Dense, [None, 40], relu, (tf.keras.regularizers.l2, 0.1)],
                [Dense, [None, classes], linear, None]]

    for layer in target.layers:
        assert type(layer) == expected[i][0], \\
            f"Wrong type in layer {i}. Expected {expected[i][0]} but got {type(layer)}"
        assert layer.output.shape.as_list() == expected[i][1], \\
            f"Wrong number of units in layer {i}. Expected {expected[i][1]} but got {layer.output.shape.as_list()}"
        assert layer.activation == expected[i][2], \\
            f"Wrong activation in layer {i}. Expected {expected[i][2]} but got {layer.activation}"
        if not(expected[i][3] == None):
            assert type(layer.kernel_regularizer) == expected[i][3][0], f"Wrong regularizer. Expected L2 regularizer but got {type(layer.kernel_regularizer)}"
            assert np.isclose(layer.kernel_regularizer.l2,  expected[i][3][1]), f"Wrong regularization factor. Expected {expected[i][3][1]}, but got {layer.kernel_regularizer.l2}"
        else:
            assert layer.kernel_regularizer == None, "You must not specify any regularizer for any layer"
        i = i + 1

    assert type(target.loss)==SparseCategoricalCrossentropy, f"Wrong loss. Expected {SparseCategoricalCrossentropy}, but got {target.loss}"
    assert type(target.optimizer)==Adam, f"Wrong loss. Expected {Adam}, but got {target.optimizer}"
    lr = target.optimizer.learning_rate.numpy()
    assert np.isclose(lr, expected_lr, atol=1e-8), f"Wrong learning rate. Expected {expected_lr}, but got {lr}"
    assert target.loss.get_config()['from_logits'], f"Set from_logits=True in loss function"

    print("\\033[92mAll tests passed!")
"""

WEEK3_ASSIGNMENT = """
import numpy as np
import tensorflow as tf
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense
from tensorflow.keras.activations import relu,linear
from tensorflow.keras.losses import SparseCategoricalCrossentropy
from tensorflow.keras.optimizers import Adam

import logging
logging.getLogger("tensorflow").setLevel(logging.ERROR)

tf.keras.backend.set_floatx('float64')

tf.autograph.set_verbosity(0)

# Generate and split data set
X, y, centers, classes, std = gen_blobs()

# split the data. Large CV population for demonstration
X_train, X_, y_train, y_ = train_test_split(X,y,test_size=0.50, random_state=1)
X_cv, X_test, y_cv, y_test = train_test_split(X_,y_,test_size=0.20, random_state=1)
print("X_train.shape:", X_train.shape, "X_cv.shape:", X_cv.shape, "X_test.shape:", X_test.shape)

def eval_cat_err(y, yhat):
    m = len(y)
    incorrect = 0
    for i in range(m):
        if yhat[i] != y[i]:
            incorrect += 1
    cerr = incorrect/m
    return(cerr)

tf.random.set_seed(1234)
model = Sequential(
    [
        Dense(120, activation = 'relu', name = "L1"),
        Dense(40, activation = 'relu', name = "L2"),
        Dense(classes, activation = 'linear', name = "L3")
    ], name="Complex"
)
model.compile(
    loss=SparseCategoricalCrossentropy(from_logits=True),
    optimizer=tf.keras.optimizers.Adam(0.01),
)

model.fit(
    X_train, y_train,
    epochs=EPOCHS
)

model.summary()
MODEL_TEST

#make a model for plotting routines to call
model_predict = lambda Xl: np.argmax(tf.nn.softmax(model.predict(Xl)).numpy(),axis=1)

training_cerr_complex = eval_cat_err(y_train, model_predict(X_train))
cv_cerr_complex = eval_cat_err(y_cv, model_predict(X_cv))
print(f"categorization error, training, complex model: {training_cerr_complex:0.3f}")
print(f"categorization error, cv,       complex model: {cv_cerr_complex:0.3f}")

tf.random.set_seed(1234)
model_r = Sequential(
    [
        Dense(120, activation = 'relu', kernel_regularizer=tf.keras.regularizers.l2(0.1), name="L1"),
        Dense(40, activation = 'relu', kernel_regularizer=tf.keras.regularizers.l2(0.1), name="L2"),
        Dense(classes, activation = 'linear', name="L3")
    ], name= None
)
model_r.compile(
    loss=SparseCategoricalCrossentropy(from_logits=True),
    optimizer=tf.keras.optimizers.Adam(0.01),
)

model_r.fit(
    X_train, y_train,
    epochs=EPOCHS
)

model_r.summary()
MODEL_S_TEST

#make a model for plotting routines to call
model_predict_r = lambda Xl: np.argmax(tf.nn.softmax(model_r.predict(Xl)).numpy(),axis=1)

training_cerr_reg = eval_cat_err(y_train, model_predict_r(X_train))
cv_cerr_reg = eval_cat_err(y_cv, model_predict_r(X_cv))
test_cerr_reg = eval_cat_err(y_test, model_predict_r(X_test))
print(f"categorization error, training, regularized: {training_cerr_reg:0.3f}")
print(f"categorization error, cv,       regularized: {cv_cerr_reg:0.3f}")
"""


def _week3(epochs=60, unit_tests=False):
    helpers = {"gen_blobs": gen_blobs, "train_test_split": train_test_split, "EPOCHS": epochs}
    script = WEEK3_ASSIGNMENT
    if unit_tests:
        tests = run_as_logitnet(WEEK3_PUBLIC_TESTS)
        helpers.update(model_test=tests["model_test"], model_s_test=tests["model_s_test"])
        script = script.replace("MODEL_TEST", "model_test(model, classes, X_train.shape[1])")
        script = script.replace("MODEL_S_TEST", "model_s_test(model_r, classes, X_train.shape[1])")
    else:
        script = script.replace("MODEL_TEST", "").replace("MODEL_S_TEST", "")
    return run_as_logitnet(script, **helpers)


def test_week3_float64_and_l2_regularization():
    ns = _week3()
    model, model_r = ns["model"], ns["model_r"]
    # set_floatx('float64') reached every weight, and the predictions.
    assert logitnet.backend.floatx() == "float64"
    for m in (model, model_r):
        assert all(w.dtype == np.float64 for w in m.get_weights())
        assert m.predict(ns["X_cv"][:3]).dtype == np.float64
    assert [type(m.layers[0].kernel_regularizer).__name__ for m in (model, model_r)] == ["NoneType", "L2"]
    assert model_r.layers[0].kernel_regularizer.l2 == pytest.approx(0.1)
    # Both models classify the six blobs well; the penalty keeps the regularized weights small.
    assert ns["training_cerr_complex"] < 0.1 and ns["cv_cerr_complex"] < 0.15
    assert ns["training_cerr_reg"] < 0.15 and ns["cv_cerr_reg"] < 0.15 and ns["test_cerr_reg"] < 0.2
    for i in (0, 1):
        assert np.sum(model_r.layers[i].get_weights()[0] ** 2) < 0.5 * np.sum(model.layers[i].get_weights()[0] ** 2)
    # The regularized loss is the exact cross-entropy plus 0.1·ΣW² for the two hidden kernels.
    X, y = ns["X_train"], ns["y_train"]
    penalty = 0.1 * sum(float(np.sum(model_r.layers[i].get_weights()[0] ** 2)) for i in (0, 1))
    want = _exact_mean_ce(model_r.predict(X), y) + penalty
    assert model_r.evaluate(X, y, verbose=0) == pytest.approx(want, rel=1e-9)
    # model_predict is the argmax of the logits (softmax keeps the order).
    np.testing.assert_array_equal(ns["model_predict"](X), np.argmax(model.predict(X), axis=1))


def test_week3_assignment_unit_tests_pass(capsys):
    _week3(epochs=1, unit_tests=True)
    assert capsys.readouterr().out.count("All tests passed!") == 2


def test_optimizer_learning_rate_answers_numpy():
    ns = run_as_logitnet("""
        import tensorflow as tf
        opt = tf.keras.optimizers.Adam(0.01)
        lr = opt.learning_rate.numpy()
    """)
    assert ns["lr"] == pytest.approx(0.01)


def test_regularizers_l2_is_the_class_l2():
    ns = run_as_logitnet("""
        import tensorflow as tf
        from tensorflow.keras.layers import Dense
        layer = Dense(3, kernel_regularizer=tf.keras.regularizers.l2(0.1))
        same_type = type(layer.kernel_regularizer) == tf.keras.regularizers.l2
        is_instance = isinstance(layer.kernel_regularizer, tf.keras.regularizers.l2)
    """)
    assert ns["same_type"] and ns["is_instance"]


MODEL_SELECTION_LAB = """
import numpy as np
import tensorflow as tf
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense
tf.get_logger().setLevel('ERROR')

# a stand-in for the lab's data: y = 3x + 1 (the lab fits polynomial features of a noisy set)
x = np.linspace(-2, 2, 64).reshape(-1, 1)
y = 3 * x + 1
x_mean, x_std = x.mean(axis=0), x.std(axis=0)          # StandardScaler
X_train_mapped_scaled = (x - x_mean) / x_std
y_train = y

def build_models():

    tf.random.set_seed(20)

    model_1 = Sequential(
        [
            Dense(25, activation = 'relu'),
            Dense(15, activation = 'relu'),
            Dense(1, activation = 'linear')
        ],
        name='model_1'
    )
    model_list = [model_1]
    return model_list

nn_train_mses = []
nn_models = build_models()

for model in nn_models:

    # Setup the loss and optimizer
    model.compile(
    loss='mse',
    optimizer=tf.keras.optimizers.Adam(learning_rate=0.1),
    )

    print(f"Training {model.name}...")

    # Train the model
    history = model.fit(
        X_train_mapped_scaled, y_train,
        epochs=300,
        verbose=0
    )

    print("Done!\\n")

    # Record the training MSEs
    yhat = model.predict(X_train_mapped_scaled)
    train_mse = np.mean((y_train - yhat) ** 2) / 2     # sklearn's mean_squared_error / 2
    nn_train_mses.append(train_mse)
"""


def test_week3_regression_network_learns_a_line_with_mse():
    ns = run_as_logitnet(MODEL_SELECTION_LAB)
    model = ns["model"]
    assert model.name == "model_1" and model.loss.get_config()["name"] in ("mean_squared_error", "mse")
    assert ns["yhat"].shape == (64, 1)
    # The loss fell from the line's variance (about 12) to nearly nothing; evaluate says the same.
    loss = ns["history"].history["loss"]
    assert loss[0] > 1 and loss[-1] < 0.05
    assert ns["nn_train_mses"][0] < 0.02
    mse = float(np.mean((ns["y_train"] - ns["yhat"]) ** 2))
    assert model.evaluate(ns["X_train_mapped_scaled"], ns["y_train"], verbose=0) == pytest.approx(mse, rel=1e-4)


def test_week3_binary_classification_cell_thresholds_with_tf_where():
    ns = run_as_logitnet("""
        import numpy as np
        import tensorflow as tf
        from tensorflow.keras.models import Sequential
        from tensorflow.keras.layers import Dense

        rng = np.random.default_rng(0)
        x_bc_train_scaled = rng.normal(size=(200, 2))
        y_bc_train = (x_bc_train_scaled[:, :1] + x_bc_train_scaled[:, 1:] > 0).astype(int)

        tf.random.set_seed(20)
        model = Sequential([Dense(20, activation='relu'), Dense(1, activation='linear')])
        model.compile(
            loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
            optimizer=tf.keras.optimizers.Adam(learning_rate=0.01),
        )
        model.fit(x_bc_train_scaled, y_bc_train, epochs=30, verbose=0)

        threshold = 0.5
        yhat = model.predict(x_bc_train_scaled)
        yhat = tf.math.sigmoid(yhat)
        yhat = tf.where(yhat >= threshold, 1, 0)
        train_error = np.mean(yhat != y_bc_train)
    """)
    assert ns["train_error"] < 0.05


def test_adam_lr_alias_warns_and_trains():
    with pytest.warns(DeprecationWarning, match="lr"):
        ns = run_as_logitnet("""
            import numpy as np
            import tensorflow as tf
            from tensorflow.keras.models import Sequential
            from tensorflow.keras.layers import Dense
            from tensorflow.keras.optimizers import Adam

            X = np.linspace(-1, 1, 32).reshape(-1, 1)
            y = (X > 0).astype(int)
            tf.random.set_seed(3)
            model = Sequential([Dense(1, activation='sigmoid')])
            model.compile(loss=tf.keras.losses.BinaryCrossentropy(), optimizer=Adam(lr=0.01))
            history = model.fit(X, y, epochs=20, verbose=0)
        """)
    model = ns["model"]
    assert model.optimizer.learning_rate == pytest.approx(0.01) == model.optimizer.lr
    loss = ns["history"].history["loss"]
    assert loss[-1] < loss[0]


# --- the global seed: tf.random.set_seed / tf.keras.utils.set_random_seed -----------------------
SEEDED_CELL = """
import numpy as np
import tensorflow as tf
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense, Dropout

rng = np.random.default_rng(0)               # the data: fixed, whatever the seed
X = rng.normal(size=(64, 4))
y = (X[:, 0] > X[:, 1]).astype(int) + (X[:, 2] > 0)

SEED_CALL
model = Sequential(
    [
        tf.keras.Input(shape=(4,)),
        Dense(8, activation='relu'),
        Dropout(0.2),
        Dense(3, activation='linear')
    ]SEED_ARG
)
model.compile(
    loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    optimizer=tf.keras.optimizers.Adam(0.01),
)
initial = model.get_weights()
model.fit(X, y, epochs=3, batch_size=8, verbose=0)   # shuffles and drops out: random too
trained = model.get_weights()

linear_layer = tf.keras.layers.Dense(units=1, activation = 'linear', )
a1 = linear_layer(X[:1])
layer_weights = linear_layer.get_weights()
"""

SEED_CALLS = {"tf.random.set_seed": "tf.random.set_seed({})",
              "tf.keras.utils.set_random_seed": "tf.keras.utils.set_random_seed({})"}


def _seeded(call: str, seed: int, model_seed: int | None = None) -> dict:
    script = SEEDED_CELL.replace("SEED_CALL", SEED_CALLS[call].format(seed))
    script = script.replace("SEED_ARG", "" if model_seed is None else f", seed={model_seed}")
    ns = run_as_logitnet(script)
    logitnet.backend.set_global_seed(None)
    return ns


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("call", sorted(SEED_CALLS))
def test_a_global_seed_makes_the_notebook_repeatable(call):
    first, again, other = _seeded(call, 1234), _seeded(call, 1234), _seeded(call, 4321)
    for key in ("initial", "trained", "layer_weights"):
        assert _same(first[key], again[key]), key
        assert not _same(first[key], other[key]), key
    np.testing.assert_array_equal(first["a1"], again["a1"])
    assert not _same(first["initial"], first["trained"])  # it did train


@pytest.mark.parametrize("call", sorted(SEED_CALLS))
def test_an_explicit_model_seed_wins_over_the_global_one(call):
    # Sequential(..., seed=7) is logitnet's own argument (initialisation, dropout, shuffling).
    a, b = _seeded(call, 1234, model_seed=7), _seeded(call, 4321, model_seed=7)
    assert _same(a["initial"], b["initial"]) and _same(a["trained"], b["trained"])
    # ... while the layer without a seed still follows the global one.
    assert not _same(a["layer_weights"], b["layer_weights"])


def test_without_a_seed_two_runs_differ():
    script = SEEDED_CELL.replace("SEED_CALL", "").replace("SEED_ARG", "")
    a, b = run_as_logitnet(script), run_as_logitnet(script)
    assert not _same(a["initial"], b["initial"])


def test_set_random_seed_seeds_numpy_and_python_as_keras_does():
    ns = run_as_logitnet("""
        import random
        import numpy as np
        import tensorflow as tf
        tf.keras.utils.set_random_seed(5)
        first = (np.random.rand(3), random.random())
        tf.keras.utils.set_random_seed(5)
        again = (np.random.rand(3), random.random())
    """)
    np.testing.assert_array_equal(ns["first"][0], ns["again"][0])
    assert ns["first"][1] == ns["again"][1]


# --- logitnet.tf is not TensorFlow --------------------------------------------------------------
def test_importing_logitnet_tf_imports_no_framework():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import logitnet, logitnet.tf
        import logitnet.tf as tf
        from logitnet.layers import Dense
        from logitnet.models import Sequential
        tf.random.set_seed(0)
        model = Sequential([tf.keras.Input(shape=(2,)), Dense(3, activation='relu'), Dense(2)])
        model.compile(loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer='adam')
        model.fit(np.zeros((4, 2)), np.array([0, 1, 0, 1]), epochs=1, verbose=0)
        tf.nn.softmax(model.predict(np.zeros((1, 2)), verbose=0)).numpy()
        print(sorted(m for m in ("tensorflow", "keras", "torch") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# --- side by side with Keras 3 (compare) -------------------------------------------------------
# Scripts in Keras 3 form: `from tensorflow.keras... import ...` lines and no `tf.` names, so the
# same text runs on real Keras (torch backend) and on logitnet.
SIDE_BY_SIDE = """
import numpy as np
from tensorflow.keras import Sequential, Input
from tensorflow.keras.layers import Dense, Normalization
from tensorflow.keras.utils import to_categorical

# coffee roasting: normalization, then the notebook's weights
X, Y = load_coffee_data()
norm_l = Normalization(axis=-1)
norm_l.adapt(X)
Xn = norm_l(X)
X_test = np.array([
    [200,13.9],  # postive example
    [200,17]])   # negative example
X_testn = norm_l(X_test)

coffee = Sequential(
    [
        Input(shape=(2,)),
        Dense(3, activation='sigmoid', name = 'layer1'),
        Dense(1, activation='sigmoid', name = 'layer2')
     ]
)
coffee.summary()
W1 = np.array([
    [-8.94,  0.29, 12.89],
    [-0.17, -7.34, 10.79]] )
b1 = np.array([-9.87, -9.28,  1.01])
W2 = np.array([
    [-31.38],
    [-27.86],
    [-32.79]])
b2 = np.array([15.54])
coffee.get_layer("layer1").set_weights([W1,b1])
coffee.get_layer("layer2").set_weights([W2,b2])
coffee_predictions = coffee.predict(X_testn)
coffee_all = coffee.predict(X)      # raw, unnormalized: saturated sigmoids

# the logistic neuron of week 1
neuron = Sequential([Input(shape=(1,)), Dense(1, activation = 'sigmoid', name='L1')])
neuron.summary()
neuron.get_layer('L1').set_weights([np.array([[2]]), np.array([-4.5])])
neuron_predictions = neuron.predict(np.array([0., 1, 2, 3, 4, 5], dtype=np.float32).reshape(-1,1))

# the week 1 and week 2 assignments' architectures, with weights set from one generator
binary = Sequential(
    [
        Input(shape=(400,)),
        Dense(25, activation='sigmoid'),
        Dense(15, activation='sigmoid'),
        Dense(1, activation='sigmoid')
    ], name = "my_model"
)
digits = Sequential(
    [
        Input(shape=(64,)),
        Dense(25, activation='relu', name="L1"),
        Dense(15, activation='relu', name="L2"),
        Dense(10, activation='linear', name="L3"),
    ], name = "my_model"
)
binary.summary()
digits.summary()
rng = np.random.default_rng(0)
digits.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in digits.get_weights()])
x_digits = rng.random((20, 64)).astype(np.float32)
digit_logits = digits.predict(x_digits)
digit_layer_shapes = [layer.output.shape for layer in digits.layers]

onehot = to_categorical([0, 2, 1, 3, 1])
onehot_n = to_categorical(np.array([[1], [0], [2]]), num_classes=4)
"""


@pytest.fixture(scope="module")
def side_by_side():
    keras_ns = run_as_keras(SIDE_BY_SIDE, **HELPERS)
    ours_ns = run_as_logitnet(SIDE_BY_SIDE, **HELPERS)
    return ours_ns, keras_ns


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_side_by_side_normalization(side_by_side):
    ours, theirs = side_by_side
    for key in ("Xn", "X_testn"):
        got, want = _numpy(ours[key]), _numpy(theirs[key])
        assert got.dtype == want.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # [mean, variance, count]: the statistics agree. (Keras 3's adapt leaves count at 0; tf.keras 2
    # and logitnet count the samples, 200.)
    ours_w, theirs_w = ours["norm_l"].get_weights(), theirs["norm_l"].get_weights()
    assert len(ours_w) == len(theirs_w) == 3
    for got, want in zip(ours_w[:2], theirs_w[:2]):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert int(ours_w[2]) == 200


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_side_by_side_summary_parameter_counts(side_by_side):
    ours, theirs = side_by_side
    for key, want in (("coffee", 13), ("neuron", 2), ("binary", 10_431), ("digits", 2_175)):
        ours_counts = _param_counts(_summary(ours[key]))
        assert ours_counts == _param_counts(_summary(theirs[key])) == (want, want, 0), key
        assert [layer.count_params() for layer in ours[key].layers] \
            == [layer.count_params() for layer in theirs[key].layers]
    assert [tuple(s) for s in ours["digit_layer_shapes"]] == [tuple(s) for s in theirs["digit_layer_shapes"]] \
        == [(None, 25), (None, 15), (None, 10)]


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_side_by_side_predictions_for_set_weights(side_by_side):
    ours, theirs = side_by_side
    for key in ("coffee_predictions", "coffee_all", "neuron_predictions", "digit_logits"):
        got, want = ours[key], _numpy(theirs[key])
        assert type(got) is np.ndarray and got.dtype == want.dtype == np.float32, key
        # float32: 1e-6 for probabilities; logits of up to ~5 (sums of 64 products) get 1e-6 of their scale
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * max(1.0, np.abs(want).max()), err_msg=key)
    assert (ours["coffee_predictions"] >= 0.5).astype(int).tolist() == [[1], [0]]


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_side_by_side_to_categorical(side_by_side):
    ours, theirs = side_by_side
    for key in ("onehot", "onehot_n"):
        got, want = ours[key], np.asarray(theirs[key])
        assert got.dtype == want.dtype and got.shape == want.shape, key
        np.testing.assert_array_equal(got, want)
    assert ours["onehot_n"].shape == (3, 4)


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("cell", sorted(UNBUILT_CELLS))
def test_keras_itself_builds_a_model_with_an_input_at_once(cell):
    # The reference for test_layers_of_a_model_with_an_input_have_weights_at_once.
    assert run_as_keras(UNBUILT_CELLS[cell])["result"] == UNBUILT_RESULTS[cell]


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_keras_itself_answers_what_the_week3_unit_tests_ask():
    # The reference for the week 3 cases: in Keras 3 (as in tf.keras), regularizers.l2 is
    # the class L2 and an optimizer's learning_rate answers .numpy().
    ns = run_as_keras("""
        from tensorflow.keras.layers import Dense
        from tensorflow.keras import regularizers, optimizers
        layer = Dense(3, kernel_regularizer=regularizers.l2(0.1))
        same_type = type(layer.kernel_regularizer) == regularizers.l2
        factor = layer.kernel_regularizer.l2
        lr = optimizers.Adam(0.01).learning_rate.numpy()
    """)
    assert ns["same_type"] and ns["factor"] == pytest.approx(0.1) and ns["lr"] == pytest.approx(0.01)
