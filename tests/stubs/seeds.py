"""The seed charts now live in the product (cds_service.synthetic.seeds); tests keep
importing them from here."""
from cds_service.synthetic.seeds import (SEED_000_AUTHORED, SEED_001_AUTHORED, SEED_002_AUTHORED,  # noqa: F401
                                         seed_000_chart, seed_000_orders, seed_001_chart, seed_001_orders,
                                         seed_002_chart, seed_002_orders)
