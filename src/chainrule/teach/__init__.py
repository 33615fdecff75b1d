"""Teaching instruments: gradient checking (and, later, backprop traces and plots)."""
from .gradcheck import GradcheckError, GradcheckReport, gradcheck
