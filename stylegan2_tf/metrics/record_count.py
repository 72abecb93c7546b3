"""The real number of records of a dataset's shards, checked against its metadata.json.

The metrics take a dataset's size from metadata.json (the first N images, the feature
cache's key); a shard that was cut short, replaced or rewritten would make them measure
other images than they say. Records are counted from the TFRecord framing alone
(each record: 8-byte length, 4-byte CRC, the data, 4-byte CRC), seeking over the data,
so counting costs a few bytes per record whatever the images' size.
"""

import os
import struct

from stylegan2_tf.data.records import DatasetFormatError

_LENGTH = struct.Struct("<Q")
_FRAMING = 8 + 4 + 4  # length, its CRC, the data's CRC


def count_records(path):
    """The number of records in the TFRecord file `path` (uncompressed, as the converter writes).

    Raises ValueError when the file ends inside a record (cut short, or not a TFRecord file).
    """
    size = os.path.getsize(path)
    count = position = 0
    with open(path, "rb") as f:
        while position < size:
            f.seek(position)
            header = f.read(_LENGTH.size)
            end = position + _FRAMING + (_LENGTH.unpack(header)[0] if len(header) == _LENGTH.size
                                         else size)
            if end > size:
                raise ValueError(f"{path} ends inside record {count + 1} (cut short, or not a "
                                 "TFRecord file)")
            count += 1
            position = end
    return count


def check_record_count(data_dir, metadata):
    """Raises DatasetFormatError, one line naming `data_dir` and both counts, unless its shards
    hold the records metadata.json (read_metadata's dict) says, shard by shard."""
    claimed = metadata["image_count"]
    real, wrong = 0, []
    for shard in metadata["shards"]:
        try:
            count = count_records(os.path.join(data_dir, shard["file"]))
        except ValueError as error:
            raise DatasetFormatError(f"dataset {data_dir}: metadata.json claims {claimed} images but "
                                     f"{error}") from error
        real += count
        if count != shard["records"]:
            wrong.append(f"{shard['file']}: {count}, not {shard['records']}")
    if wrong:
        more = f"; {len(wrong) - 3} more shards" if len(wrong) > 3 else ""
        raise DatasetFormatError(f"dataset {data_dir}: metadata.json claims {claimed} images but its "
                                 f"shards hold {real} records ({'; '.join(wrong[:3])}{more})")
