#!/bin/sh
# tests/test_mpi.sh: data-parallel training under mpirun (written below)
