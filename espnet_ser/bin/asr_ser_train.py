"""Stage 4: train a joint ASR + SER model with ESPnet's trainer.

Accepts every option of ESPnet's ``asr_train`` (``--config``, ``--output_dir``,
``--train_data_path_and_name_and_type``, ``--resume``, ``--ngpu``, ``--multiprocessing_distributed``,
...), plus the classes registered by :class:`espnet_ser.tasks.asr_ser.ASRSERTask`.
``--print_config`` prints the full resolved configuration and exits.
"""

from espnet_ser.tasks.asr_ser import ASRSERTask


def get_parser():
    return ASRSERTask.get_parser()


def main(cmd=None):
    ASRSERTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
