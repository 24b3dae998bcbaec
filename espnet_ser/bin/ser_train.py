"""Stage 4 of SER recipes: train an emotion classifier with ESPnet's task runner (every option,
e.g. ``--print_config``) and the classes of :class:`espnet_ser.tasks.ser.SERTask`."""

from espnet_ser.tasks.ser import SERTask

get_parser = SERTask.get_parser


def main(cmd=None):
    SERTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
