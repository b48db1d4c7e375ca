module github.com/afteraction/afteraction/services/tracker

go 1.26
