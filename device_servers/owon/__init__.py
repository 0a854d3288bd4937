"""OWON ODP programmable power supplies (ODP6033): command set, driver and Tango device on the
`PowerSupply` vocabulary of the Aim-TTi."""
