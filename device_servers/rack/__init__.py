"""The instrument rack's climate as a Tango device (`Rack`): cabinet temperature, humidity, dew point and margin."""
