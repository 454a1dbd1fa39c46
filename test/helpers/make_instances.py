#!/usr/bin/env python3
"""Write DICOM instances described by a JSON list on stdin (one object per instance) with pydicom.

Each object: file, modality, study, series, sop, seriesNumber, instanceNumber, patientId,
optional issuer (Issuer of Patient ID label) and issuerUid (Universal Entity ID, type ISO),
studyDate, accession, bodyPart, frames (> 1: a multi-frame Secondary Capture).
Small images (16x16, 8 bit); single-frame SOP classes per modality, so several modalities and
IODs are exercised. Works with pydicom 2.3 (Debian) and 3.x."""
import json, sys
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

PYDICOM3 = int(pydicom.__version__.split('.')[0]) >= 3
SC = '1.2.840.10008.5.1.4.1.1.7'
SC_MULTIFRAME_BYTE = '1.2.840.10008.5.1.4.1.1.7.2'
# Secondary Capture for every modality keeps the IOD small; Modality differs per series
def save(ds, path):
    if PYDICOM3:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(path, write_like_original=False)

def make(o):
    frames = int(o.get('frames') or 1)
    sop_class = SC_MULTIFRAME_BYTE if frames > 1 else SC
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = o['sop']
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset(); ds.file_meta = meta
    ds.SpecificCharacterSet = 'ISO_IR 100'
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, o['sop']
    ds.PatientName = o.get('patientName', 'Doe^Jane')
    ds.PatientID = o['patientId']
    if o.get('issuer'):
        ds.IssuerOfPatientID = o['issuer']
    if o.get('issuerUid'):
        q = Dataset(); q.UniversalEntityID = o['issuerUid']; q.UniversalEntityIDType = 'ISO'
        ds.IssuerOfPatientIDQualifiersSequence = Sequence([q])
    ds.PatientBirthDate, ds.PatientSex = '19700101', 'F'
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = o['study'], o.get('studyDate', '20240102'), '101500'
    ds.ReferringPhysicianName, ds.StudyID, ds.AccessionNumber = '', 'S1', o.get('accession', 'ACC-0001')
    ds.StudyDescription = o.get('studyDescription', 'Publish test study')
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.Modality = o['series'], int(o['seriesNumber']), o['modality']
    ds.SeriesDescription = o.get('seriesDescription', 'Series %s' % o['seriesNumber'])
    ds.SeriesDate, ds.SeriesTime = o.get('studyDate', '20240102'), '101600'
    if o.get('bodyPart'):
        ds.BodyPartExamined = o['bodyPart']
    ds.Laterality = ''
    ds.ConversionType = 'WSD'
    ds.Manufacturer = 'pydicom'
    ds.InstitutionName = 'Test Hospital'
    ds.InstanceNumber = int(o['instanceNumber'])
    ds.PatientOrientation = ''
    ds.ContentDate, ds.ContentTime = o.get('studyDate', '20240102'), '101500'
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
    ds.Rows = ds.Columns = 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameIncrementPointer = (0x0018, 0x2001)  # Page Number Vector
        ds.PageNumberVector = list(range(1, frames + 1))
    ds.PixelData = bytes((x * 7 + int(o['instanceNumber'])) % 256 for x in range(16 * 16 * frames))
    save(ds, o['file'])

for o in json.load(sys.stdin):
    make(o)
