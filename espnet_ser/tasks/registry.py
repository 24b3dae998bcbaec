"""Extending ESPnet's class registries with the toolkit's classes."""

from espnet2.train.class_choices import ClassChoices


def extend_choices(base: ClassChoices, default=None, **ours) -> ClassChoices:
    """A copy of an ESPnet registry with ``ours`` added (ESPnet's own stays intact)."""
    return ClassChoices(name=base.name, classes=dict(base.classes, **ours),
                        type_check=base.base_type,
                        default=base.default if default is None else default,
                        optional=base.optional)


def build_frontend(args, choices: ClassChoices):
    """``(frontend, input size)``: ``(None, --input_size)`` for dumped features (the config's
    frontend cleared), else the ``--frontend`` built."""
    if getattr(args, "input_size", None) is not None:
        args.frontend, args.frontend_conf = None, {}
        return None, args.input_size
    frontend = build_choice(args, choices)
    if frontend is None:
        raise ValueError("give --input_size (features) or a --frontend (waveforms)")
    return frontend, frontend.output_size()


def build_choice(args, choices: ClassChoices, source: str = "its input", **extra):
    """The class ``args.<name>`` of ``choices`` built with ``extra`` and ``args.<name>_conf``
    (None when ``args.<name>`` is None). An ``input_size`` in the conf must be ``extra``'s,
    the size ``source`` gives."""
    name = getattr(args, choices.name, None)
    if name is None:
        return None
    conf = dict(getattr(args, f"{choices.name}_conf", None) or {})
    given = conf.pop("input_size", None) if "input_size" in extra else None
    if given is not None and int(given) != extra["input_size"]:
        raise ValueError(f"{choices.name}_conf.input_size is {given}, but {source} gives it "
                         f"{extra['input_size']}-dim input: the config does not match it")
    return choices.get_class(name)(**extra, **conf)
