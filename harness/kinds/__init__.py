"""The kinds of experiment, one folder each (its measurement, its report section, its metric table); ``registry``
lists them."""
