"""The FHIR builders now live in the product (cds_service.synthetic.builders); tests keep
importing them from here."""
from cds_service.synthetic.builders import *  # noqa: F401,F403
from cds_service.synthetic.builders import __all__  # noqa: F401
