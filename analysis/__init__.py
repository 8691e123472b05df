"""Result records (one JSON document per run), their store, and statistics over them."""

from analysis.records import ResultRecord, new_histogram
from analysis.store import load_records, records_dataframe, save_record

__all__ = ["ResultRecord", "load_records", "new_histogram", "records_dataframe", "save_record"]
