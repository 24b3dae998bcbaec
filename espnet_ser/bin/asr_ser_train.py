"""Stage 4: train a joint ASR + SER model: ESPnet's ``asr_train`` (every option, e.g.
``--print_config``) with the classes of :class:`espnet_ser.tasks.asr_ser.ASRSERTask`."""

from espnet_ser.tasks.asr_ser import ASRSERTask

get_parser = ASRSERTask.get_parser


def main(cmd=None):
    ASRSERTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
