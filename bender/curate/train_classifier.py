"""Training an image classifier: transfer learning on a pretrained backbone, or the all-conv net from scratch.

Frozen backbone (the default): every image is embedded once (plus its mirror image, a free
augmentation) and only a softmax head is trained on the features — seconds on a CPU, and robust
with a few dozen images per class. `finetune=True` trains the backbone too (lower learning rate,
BatchNorm statistics kept frozen because small batches would corrupt them). `allconv` trains the
lecture's all-convolutional net end to end. The split is stratified and seeded; the weights of the
epoch with the best validation accuracy are kept.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bender.curate.classifier import Classifier, ClassifierInfo
from bender.curate.sources import ImageSet
from bender.errors import BenderError
from bender.nets.cnn import AllConvConfig, AllConvNet, BackboneFeatures, FeatureExtractor


@dataclass
class TrainOptions:
    backbone: str = "auto"  # mobilenet_v2 | resnet18 | d:MODEL | allconv | weights file; auto: mobilenet_v2/allconv
    finetune: bool = False
    epochs: int | None = None  # default: 60 (frozen head), 10 (fine-tune), 40 (allconv)
    batch: int = 32
    lr: float | None = None  # default: 1e-3 (head), 2e-3 (allconv); the backbone gets lr/10 when fine-tuned
    val_fraction: float = 0.2
    seed: int = 0
    size: int = 64  # allconv input size
    width: int = 32  # allconv channels (first stage)
    dropout: float = 0.2
    device: str = "auto"


def make_extractor(options: TrainOptions, device: torch.device) -> FeatureExtractor:
    from bender.metrics.features import load_feature_extractor, mobilenet_available

    name = options.backbone
    if name == "auto":
        name = "mobilenet_v2" if mobilenet_available() else "allconv"
    if name == "allconv":
        net = AllConvNet(AllConvConfig(num_classes=0, width=options.width, dropout=0.3))
        ext = BackboneFeatures(net, "allconv", input_size=options.size, imagenet_norm=False)
        ext.key = "allconv"
        return ext.to(device)
    return load_feature_extractor(name, device)


def split_indices(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: about val_fraction of each class (at least one when the class has 2+) to validation."""
    rng = np.random.RandomState(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_val = int(round(val_fraction * len(idx))) if val_fraction > 0 else 0
        if val_fraction > 0 and len(idx) >= 2:
            n_val = min(max(1, n_val), len(idx) - 1)
        val += idx[:n_val].tolist()
        train += idx[n_val:].tolist()
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(val), dtype=np.int64)


def to_tensor(images: np.ndarray, device) -> torch.Tensor:
    from bender.metrics.embed import uint8_to_tensor

    return uint8_to_tensor(images, device)


def confusion_matrix(true: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    m = np.zeros([k, k], dtype=np.int64)
    np.add.at(m, (true, pred), 1)
    return m


@torch.no_grad()
def embed_all(ext: FeatureExtractor, images: np.ndarray, device, batch: int, flip: bool = False) -> torch.Tensor:
    out = []
    for s in range(0, len(images), batch):
        x = to_tensor(images[s:s + batch], device)
        out.append(ext(x.flip(3) if flip else x))
    return torch.cat(out) if out else torch.zeros([0, ext.dim], device=device)


def train_classifier_arrays(images: np.ndarray, labels: np.ndarray, class_names: list[str], options: TrainOptions,
                            extractor: FeatureExtractor | None = None, progress: bool = False) -> Classifier:
    """Train on uint8 images [N, H, W, C] with integer labels; returns the classifier with its report."""
    from bender.device import pick_device

    device = pick_device(options.device)
    torch.manual_seed(options.seed)
    labels = np.asarray(labels, dtype=np.int64)
    if len(class_names) < 2:
        raise BenderError("need at least 2 classes to train a classifier")
    counts = np.bincount(labels, minlength=len(class_names))
    if counts.min() < 2:
        raise BenderError(f"class '{class_names[int(counts.argmin())]}' has {counts.min()} image(s); need 2 or more")
    ext = extractor if extractor is not None else make_extractor(options, device)
    trainable = options.finetune or ext.name == "allconv"
    clf = Classifier(ext, ClassifierInfo(options.backbone, list(class_names), finetuned=options.finetune,
                                         dropout=options.dropout)).to(device)
    tr, va = split_indices(labels, options.val_fraction, options.seed)
    y = torch.from_numpy(labels).to(device)
    train = _train_end_to_end if trainable else _train_head
    history, best_epoch = train(clf, images, y, tr, va, options, device, progress)
    clf.eval()
    eval_idx = va if len(va) else tr
    with torch.no_grad():
        pred = torch.cat([clf(to_tensor(images[eval_idx[s:s + options.batch]], device)).argmax(1)
                          for s in range(0, len(eval_idx), options.batch)]).cpu().numpy()
    conf = confusion_matrix(labels[eval_idx], pred, len(class_names))
    clf.info.report = {
        "backbone": ext.name, "features_key": ext.key, "finetuned": options.finetune,
        "train_images": int(len(tr)), "val_images": int(len(va)),
        "class_counts": {n: int(c) for n, c in zip(class_names, counts)},
        "val_accuracy": float((pred == labels[eval_idx]).mean()),
        "evaluated_on": "validation" if len(va) else "training (no validation split)",
        "best_epoch": best_epoch, "epochs": len(history),
        "confusion": conf.tolist(), "history": history,
    }
    return clf.cpu()


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(1) == y).float().mean()) if len(y) else float("nan")


def _train_head(clf: Classifier, images, y, tr, va, options: TrainOptions, device, progress,
                ) -> tuple[list[dict], int]:
    """Frozen backbone: embed once (image + mirror), then fit the softmax head on the features."""
    ext = clf.extractor.eval()
    feats = embed_all(ext, images, device, options.batch)
    feats_flip = embed_all(ext, images, device, options.batch, flip=True)
    x_tr = torch.cat([feats[tr], feats_flip[tr]])
    y_tr = torch.cat([y[tr], y[tr]])
    x_va, y_va = feats[va], y[va]
    epochs = options.epochs or 60
    opt = torch.optim.AdamW(clf.head.parameters(), lr=options.lr or 1e-3, weight_decay=1e-3)
    gen = torch.Generator().manual_seed(options.seed)
    history, best_state, best_key, best_epoch = [], None, None, 0
    for epoch in _epochs(epochs, progress):
        clf.head.train()
        order = torch.randperm(len(x_tr), generator=gen).to(device)
        total = 0.0
        for s in range(0, len(order), options.batch):
            b = order[s:s + options.batch]
            loss = F.cross_entropy(clf.head(x_tr[b]), y_tr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        clf.head.eval()
        with torch.no_grad():
            train_acc = _accuracy(clf.head(feats[tr]), y[tr])
            val_logits = clf.head(x_va) if len(va) else None
        record = _record(epoch, total / len(x_tr), train_acc, val_logits, y_va)
        history.append(record)
        key = (record["val_accuracy"], -record["val_loss"])
        if best_key is None or key > best_key:
            best_key, best_epoch, best_state = key, epoch, copy.deepcopy(clf.head.state_dict())
    clf.head.load_state_dict(best_state)
    return history, best_epoch


def _train_end_to_end(clf: Classifier, images, y, tr, va, options: TrainOptions, device, progress,
                      ) -> tuple[list[dict], int]:
    """All-conv from scratch, or a fine-tuned backbone: minibatches with random mirroring."""
    scratch = clf.extractor.name == "allconv"
    lr = options.lr or (2e-3 if scratch else 1e-3)
    groups = [{"params": clf.head.parameters(), "lr": lr},
              {"params": clf.extractor.parameters(), "lr": lr if scratch else lr / 10}]
    clf.extractor.requires_grad_(True)
    opt = torch.optim.AdamW(groups, weight_decay=1e-4)
    epochs = options.epochs or (40 if scratch else 10)
    gen = torch.Generator().manual_seed(options.seed)
    history, best_state, best_key, best_epoch = [], None, None, 0
    for epoch in _epochs(epochs, progress):
        clf.train()
        if not scratch:  # keep pretrained BatchNorm statistics: small batches would corrupt them
            for m in clf.extractor.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        order = tr[torch.randperm(len(tr), generator=gen).numpy()]
        total = 0.0
        for s in range(0, len(order), options.batch):
            b = order[s:s + options.batch]
            x = to_tensor(images[b], device)
            flip = torch.rand(len(b), generator=gen) < 0.5
            x[flip.to(device)] = x[flip.to(device)].flip(3)
            loss = F.cross_entropy(clf(x), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        clf.eval()
        with torch.no_grad():
            train_acc = _accuracy(_logits(clf, images, tr, device, options.batch), y[tr])
            val_logits = _logits(clf, images, va, device, options.batch) if len(va) else None
        record = _record(epoch, total / max(1, len(tr)), train_acc, val_logits, y[va])
        history.append(record)
        key = (record["val_accuracy"], -record["val_loss"])
        if best_key is None or key > best_key:
            best_key, best_epoch, best_state = key, epoch, copy.deepcopy(clf.state_dict())
    clf.load_state_dict(best_state)
    clf.requires_grad_(False)
    return history, best_epoch


@torch.no_grad()
def _logits(clf: Classifier, images, idx, device, batch: int) -> torch.Tensor:
    return torch.cat([clf(to_tensor(images[idx[s:s + batch]], device)) for s in range(0, len(idx), batch)])


def _record(epoch: int, train_loss: float, train_acc: float, val_logits, y_va) -> dict:
    if val_logits is None:  # no validation split: select on training accuracy
        return {"epoch": epoch, "train_loss": round(train_loss, 5), "train_accuracy": round(train_acc, 4),
                "val_accuracy": round(train_acc, 4), "val_loss": round(train_loss, 5)}
    return {"epoch": epoch, "train_loss": round(train_loss, 5), "train_accuracy": round(train_acc, 4),
            "val_accuracy": round(_accuracy(val_logits, y_va), 4),
            "val_loss": round(float(F.cross_entropy(val_logits, y_va)), 5)}


def _epochs(n: int, progress: bool):
    from tqdm import tqdm

    return tqdm(range(1, n + 1), desc="training", unit="epoch", disable=not progress, leave=False)


def load_labelled(image_set: ImageSet, size: int, batch: int = 64, progress: bool = False,
                  ) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, str]]:
    """Decode a labelled set at size x size -> (images, label indices, class names, unreadable {key: why})."""
    from bender.metrics.embed import decode_batches

    names = image_set.class_names
    index = {n: i for i, n in enumerate(names)}
    errors: dict[str, str] = {}
    images, labels = [], []
    for idx, arr in decode_batches(image_set, image_set.items, size, batch, errors):
        images.append(arr)
        labels += [index[image_set.items[i].label] for i in idx]
    if not images:
        raise BenderError(f"{image_set.root}: no readable images")
    return np.concatenate(images), np.array(labels, dtype=np.int64), names, errors


def train_classifier(image_set: ImageSet, options: TrainOptions, progress: bool = False) -> Classifier:
    """Train on a labelled image set (see bender.curate.sources.open_image_set(..., labels=...))."""
    from bender.device import pick_device

    ext = make_extractor(options, pick_device(options.device))
    images, labels, names, errors = load_labelled(image_set, ext.input_size, progress=progress)
    clf = train_classifier_arrays(images, labels, names, options, extractor=ext, progress=progress)
    clf.info.report["unreadable"] = errors
    return clf
